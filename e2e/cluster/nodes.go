package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeletVersion is what the simulated nodes report; it matches the pinned
// Kubernetes release so that version-skew checks see a consistent cluster.
const kubeletVersion = "v1.36.5"

// runNodes validates an inventory file and, unless --check, creates its nodes
// and waits until each is Ready and free of the not-ready/unreachable taints.
//
//	gemma-plane nodes --inventory FILE --check
//	gemma-plane nodes --inventory FILE --kubeconfig K [--timeout 120s]
func runNodes(args []string) int {
	fs := flag.NewFlagSet("nodes", flag.ContinueOnError)
	inv := fs.String("inventory", "", "inventory YAML file (required)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the plane")
	check := fs.Bool("check", false, "only validate the inventory and print the node names")
	timeout := fs.Duration("timeout", 120*time.Second, "how long to wait for the nodes to become Ready")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *inv == "" {
		fmt.Fprintln(os.Stderr, "usage: gemma-plane nodes --inventory FILE (--check | --kubeconfig K)")
		return 2
	}
	specs, err := loadInventory(*inv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *inv, err)
		return 1
	}
	if *check {
		for _, s := range specs {
			fmt.Println(s.Name)
		}
		return 0
	}
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "nodes: --kubeconfig is required unless --check")
		return 2
	}
	client, err := newClient(*kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nodes: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	for _, s := range specs {
		_, err := client.CoreV1().Nodes().Create(ctx, nodeObject(s), metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			fmt.Fprintf(os.Stderr, "nodes: %s already exists\n", s.Name)
		case err != nil:
			fmt.Fprintf(os.Stderr, "nodes: create %s: %v\n", s.Name, err)
			return 1
		}
	}
	if err := waitNodesReady(ctx, client, specs); err != nil {
		fmt.Fprintf(os.Stderr, "nodes: %v (see kwok.log and kube-controller-manager.log in the state dir)\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "nodes: %d simulated nodes Ready\n", len(specs))
	return 0
}

// nodeObject builds a Node with its full status. Status may be set on create;
// kwok then keeps the Ready condition and the node lease fresh.
func nodeObject(s nodeSpec) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              s.CPU,
		corev1.ResourceMemory:           s.Memory,
		corev1.ResourceEphemeralStorage: s.EphemeralStorage,
		// Without `pods` the scheduler reports "Too many pods".
		corev1.ResourcePods: *resource.NewQuantity(s.Pods, resource.DecimalSI),
	}
	if s.GPUs > 0 {
		capacity[gpuResource] = *resource.NewQuantity(s.GPUs, resource.DecimalSI)
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        s.Name,
			Labels:      s.Labels,
			Annotations: map[string]string{simulatedNodeAnnotation: "fake"},
		},
		Spec: corev1.NodeSpec{Taints: s.Taints},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: corev1.NodeHostName, Address: s.Name},
			},
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:            s.Arch,
				OperatingSystem:         "linux",
				KubeletVersion:          kubeletVersion,
				ContainerRuntimeVersion: "kwok",
				OSImage:                 "gemma-e2e simulated node",
			},
			Phase: corev1.NodeRunning,
		},
	}
}

func waitNodesReady(ctx context.Context, client kubernetes.Interface, specs []nodeSpec) error {
	var pending []string
	for {
		pending = pending[:0]
		for _, s := range specs {
			n, err := client.CoreV1().Nodes().Get(ctx, s.Name, metav1.GetOptions{})
			if err != nil {
				pending = append(pending, fmt.Sprintf("%s (%v)", s.Name, err))
				continue
			}
			if why := notReady(n); why != "" {
				pending = append(pending, s.Name+" ("+why+")")
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			sort.Strings(pending)
			return fmt.Errorf("nodes not ready in time: %s", strings.Join(pending, ", "))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// notReady says why a node cannot take pods yet, or "" if it can.
func notReady(n *corev1.Node) string {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return "Ready condition not True"
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return "taint " + t.Key
		}
	}
	return ""
}

func newClient(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return kubernetes.NewForConfig(cfg)
}
