package main

import (
	"fmt"
	"runtime/debug"
)

// runVersion prints the module versions the binary was built from.
func runVersion(_ []string) int {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Println("gemma-plane: no build info")
		return 1
	}
	fmt.Println("go", info.GoVersion)
	want := map[string]bool{
		"k8s.io/kubernetes": true, "k8s.io/apiserver": true, "k8s.io/kubectl": true,
		"go.etcd.io/etcd/server/v3": true, "sigs.k8s.io/kwok": true, "sigs.k8s.io/cli-utils": true,
		"google.golang.org/grpc": true,
	}
	for _, d := range info.Deps {
		if want[d.Path] {
			v := d.Version
			if d.Replace != nil {
				v = d.Replace.Version
			}
			fmt.Println(d.Path, v)
		}
	}
	return 0
}
