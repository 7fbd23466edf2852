package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/client/clientset/versioned"
	"sigs.k8s.io/kwok/pkg/config"
	"sigs.k8s.io/kwok/pkg/kwok/controllers"
	kwokclient "sigs.k8s.io/kwok/pkg/utils/client"
)

// simulatedNodeAnnotation marks the nodes kwok keeps alive. Only nodes created
// by `gemma-plane nodes` carry it, so kwok never touches any other node.
const simulatedNodeAnnotation = "kwok.x-k8s.io/node"

// runKwok runs kwok's controller as a library, with its stock stages:
//   - node "fast" (initialize: Ready condition, addresses, nodeInfo) and
//     "heartbeat-with-lease": node leases are renewed, so the node-lifecycle
//     controller removes the node.kubernetes.io/not-ready taint and never
//     marks the nodes Unknown or evicts their pods;
//   - pod "fast": a bound pod becomes Running and Ready at once, with a pod
//     IP from --cidr, and is removed promptly when deleted.
//
// Pod IPs come from a loopback range so that the serving simulator can listen
// on each pod's IP: test traffic never leaves 127.0.0.0/8.
func runKwok(args []string) int {
	fs := flag.NewFlagSet("kwok", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the plane (required)")
	cidr := fs.String("cidr", "127.64.0.0/16", "pod IP range; must be inside 127.0.0.0/8")
	nodeIP := fs.String("node-ip", "127.0.0.1", "node InternalIP for nodes without one; must be loopback")
	selector := fs.String("manage-nodes-with-annotation-selector", simulatedNodeAnnotation+"=fake",
		"manage only the nodes whose annotations match")
	leaseSeconds := fs.Uint("node-lease-duration-seconds", 40, "node lease duration; kwok renews at a quarter of it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "kwok: --kubeconfig is required")
		return 2
	}
	if err := requireLoopbackCIDR(*cidr); err != nil {
		fmt.Fprintf(os.Stderr, "kwok: --cidr: %v\n", err)
		return 2
	}
	if err := requireLoopback(*nodeIP); err != nil {
		fmt.Fprintf(os.Stderr, "kwok: --node-ip: %v\n", err)
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := startKwok(ctx, *kubeconfig, *cidr, *nodeIP, *selector, *leaseSeconds); err != nil {
		fmt.Fprintf(os.Stderr, "kwok: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "kwok: managing nodes with annotation %s, pod CIDR %s\n", *selector, *cidr)
	<-ctx.Done()
	return 0
}

func startKwok(ctx context.Context, kubeconfig, cidr, nodeIP, selector string, leaseSeconds uint) error {
	stages, err := defaultStages()
	if err != nil {
		return fmt.Errorf("stages: %w", err)
	}
	cs, err := kwokclient.NewClientset("", kubeconfig)
	if err != nil {
		return err
	}
	restConfig, err := cs.ToRESTConfig()
	if err != nil {
		return err
	}
	dynamicClient, err := cs.ToDynamicClient()
	if err != nil {
		return err
	}
	restMapper, err := cs.ToRESTMapper()
	if err != nil {
		return err
	}
	restClient, err := rest.RESTClientFor(restConfig)
	if err != nil {
		return err
	}
	typedClient, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	kwokClient, err := versioned.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	id, err := controllers.Identity()
	if err != nil {
		return err
	}
	// The same wiring as sigs.k8s.io/kwok/pkg/kwok/cmd, with kwok's default
	// parallelism, and stages given directly instead of through --config.
	ctr, err := controllers.NewController(controllers.Config{
		Clock:                             clock.RealClock{},
		DynamicClient:                     dynamicClient,
		RESTClient:                        restClient,
		RESTMapper:                        restMapper,
		ImpersonatingDynamicClient:        cs.ToImpersonatingDynamicClient(),
		ImpersonatingTypedClient:          cs.ToImpersonatingTypedClient(),
		TypedClient:                       typedClient,
		TypedKwokClient:                   kwokClient,
		ManageNodesWithAnnotationSelector: selector,
		CIDR:                              cidr,
		NodeIP:                            nodeIP,
		LocalStages:                       stages,
		PodPlayStageParallelism:           4,
		NodePlayStageParallelism:          4,
		NodeLeaseParallelism:              4,
		PodsOnNodeSyncParallelism:         4,
		NodeLeaseDurationSeconds:          leaseSeconds,
		ID:                                id,
	})
	if err != nil {
		return err
	}
	return ctr.Start(ctx)
}

// defaultStages parses the stage definitions embedded in the kwok module, the
// same set kwokctl uses for a cluster with node leases.
func defaultStages() (map[internalversion.StageResourceRef][]*internalversion.Stage, error) {
	raw := []string{
		nodefast.DefaultNodeInit,
		nodeheartbeat.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}
	out := map[internalversion.StageResourceRef][]*internalversion.Stage{}
	for _, r := range raw {
		s, err := config.UnmarshalWithType[*internalversion.Stage](r)
		if err != nil {
			return nil, err
		}
		out[s.Spec.ResourceRef] = append(out[s.Spec.ResourceRef], s)
	}
	return out, nil
}

func requireLoopbackCIDR(cidr string) error {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return err
	}
	_, loop, _ := net.ParseCIDR("127.0.0.0/8")
	ones, _ := ipnet.Mask.Size()
	if !loop.Contains(ipnet.IP) || ones < 8 {
		return fmt.Errorf("%s is not inside 127.0.0.0/8", cidr)
	}
	return nil
}
