package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectl "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	// Client auth plugins, as in the upstream kubectl main.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

// runKubectl mirrors k8s.io/kubernetes/cmd/kubectl: the kubectl on PATH is
// built from the same k8s.io/kubectl release as the server.
// main has already rewritten os.Args to "kubectl <args>", which the plugin
// handler and the verbosity pre-parse below read.
func runKubectl(_ []string) int {
	logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) //nolint:errcheck
	cmd := kubectl.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(cmd); err != nil {
		util.CheckErr(err) // prints the error the way kubectl does and exits non-zero
	}
	return 0
}
