package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// runKstatus computes the kstatus status of one object, as Argo CD and Flux
// do to decide whether a rollout is healthy, and prints it as JSON:
//
//	gemma-plane kstatus --kubeconfig K [-n NS] <resource> <name>
//	{"status":"Current","message":"Resource is current"}
//
// <resource> is anything kubectl accepts: gemmadeployments, deploy,
// gemmadeployments.gemma.dev, ... Exit code 0 when the object was read.
func runKstatus(args []string) int {
	fs := flag.NewFlagSet("kstatus", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the plane")
	var ns string
	fs.StringVar(&ns, "n", "default", "namespace (ignored for cluster-scoped resources)")
	fs.StringVar(&ns, "namespace", "default", "namespace (ignored for cluster-scoped resources)")
	if err := fs.Parse(interleave(args)); err != nil {
		return 2
	}
	if *kubeconfig == "" || fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: gemma-plane kstatus --kubeconfig K [-n NS] <resource> <name>")
		return 2
	}
	res, err := kstatusOf(*kubeconfig, ns, fs.Arg(0), fs.Arg(1))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		return 1
	}
	out, _ := json.Marshal(map[string]any{"status": res.Status.String(), "message": res.Message})
	fmt.Println(string(out))
	return 0
}

func kstatusOf(kubeconfig, ns, resourceArg, name string) (*status.Result, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	// The shortcut expander resolves short names (deploy, gd) as kubectl does.
	mapper := restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached,
		func(w string) { fmt.Fprintln(os.Stderr, "kstatus: warning:", w) })
	gvr, err := mapper.ResourceFor(schema.ParseGroupResource(resourceArg).WithVersion(""))
	if err != nil {
		return nil, err
	}
	gvk, err := mapper.KindFor(gvr)
	if err != nil {
		return nil, err
	}
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if mapping.Scope.Name() == "namespace" {
		ri = dyn.Resource(gvr).Namespace(ns)
	}
	obj, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return status.Compute(obj)
}

// interleave moves flags before positional arguments, so that
// `kstatus deploy web -n ns` works as it does with kubectl.
func interleave(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if !containsEq(a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func containsEq(s string) bool {
	for _, c := range s {
		if c == '=' {
			return true
		}
	}
	return false
}
