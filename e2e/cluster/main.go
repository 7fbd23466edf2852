// Command gemma-plane runs one component of a local Kubernetes control plane
// per process, dispatching on its first argument as hyperkube once did:
//
//	gemma-plane etcd | kube-apiserver | kube-controller-manager | kube-scheduler
//	gemma-plane kwok | kubectl | kstatus | argocd-health | certs | nodes | ports | wait
//
// Components cannot share a process: the apiserver's signal handler setup
// panics when called twice, the scheduler calls os.Exit on leader-election
// paths, and feature gates and metrics registries are process-global. The
// e2e/cluster/up script starts each one as a separate process.
//
// Invoked through a symlink (for example bin/kubectl -> gemma-plane), the
// symlink's name selects the subcommand.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	// The upstream mains blank-import these; keep the components' behaviour
	// (JSON logging, client-go and version metrics, CronJob time zones) identical.
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	_ "time/tzdata"
)

// A subcommand receives the arguments after its name and returns the exit code.
type subcommand struct {
	run     func(args []string) int
	summary string
}

var subcommands = map[string]subcommand{
	"etcd":                    {runEtcd, "embedded etcd on loopback"},
	"kube-apiserver":          {runAPIServer, "upstream kube-apiserver"},
	"kube-controller-manager": {runControllerManager, "upstream kube-controller-manager"},
	"kube-scheduler":          {runScheduler, "upstream kube-scheduler"},
	"kwok":                    {runKwok, "kwok controller: node heartbeats, pods marked Running"},
	"kubectl":                 {runKubectl, "upstream kubectl, same version as the server"},
	"kstatus":                 {runKstatus, "kstatus (cli-utils) status of one object, as JSON"},
	"argocd-health":           {runArgocdHealth, "run an Argo CD health.lua in gopher-lua on JSON objects"},
	"certs":                   {runCerts, "write the CA, serving/client certs, SA key, token file and kubeconfig"},
	"nodes":                   {runNodes, "validate an inventory file, create its nodes, wait until Ready"},
	"ports":                   {runPorts, "print free loopback TCP ports"},
	"wait":                    {runWait, "wait for /readyz or the default ServiceAccount"},
	"version":                 {runVersion, "print the pinned component versions"},
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if _, ok := subcommands[name]; !ok {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			usage()
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	sub, ok := subcommands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "gemma-plane: unknown subcommand %q\n\n", name)
		usage()
		os.Exit(2)
	}
	// Some components read os.Args directly (kubectl's plugin lookup and klog
	// verbosity, cobra's default argument source): make it look as if the
	// component binary had been invoked directly.
	os.Args = append([]string{name}, args...)
	os.Exit(sub.run(args))
}

func usage() {
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: gemma-plane <subcommand> [flags]")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-24s %s\n", n, subcommands[n].summary)
	}
}
