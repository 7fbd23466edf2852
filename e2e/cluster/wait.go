package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runWait blocks, for at most --timeout, until the plane reaches a state:
//
//	gemma-plane wait --kubeconfig K readyz        the apiserver's /readyz is ok
//	gemma-plane wait --kubeconfig K default-sa    the default/default ServiceAccount exists
//	gemma-plane wait healthz https://127.0.0.1:P  a component's /healthz answers ok
//	                                              (kube-controller-manager, kube-scheduler)
//
// On timeout it exits 1 with the last error seen: bounded waits keep `up`
// from ever hanging.
func runWait(args []string) int {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the plane (readyz, default-sa)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	probe, err := waitProbe(*kubeconfig, fs.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "wait: %v\nusage: gemma-plane wait [--timeout D] (--kubeconfig K readyz|default-sa | healthz URL)\n", err)
		return 2
	}
	deadline := time.Now().Add(*timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = probe(ctx)
		cancel()
		if err == nil {
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "wait %s: not reached after %s: %v\n", fs.Arg(0), *timeout, err)
			return 1
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func waitProbe(kubeconfig string, args []string) (func(context.Context) error, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no condition given")
	}
	if args[0] == "healthz" {
		if len(args) != 2 {
			return nil, fmt.Errorf("healthz needs a URL")
		}
		return healthzProbe(args[1])
	}
	if kubeconfig == "" || len(args) != 1 {
		return nil, fmt.Errorf("%s needs --kubeconfig and no further arguments", args[0])
	}
	client, err := newClient(kubeconfig)
	if err != nil {
		return nil, err
	}
	switch args[0] {
	case "readyz":
		return func(ctx context.Context) error {
			body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			if err != nil {
				return fmt.Errorf("%v %s", err, body)
			}
			return nil
		}, nil
	case "default-sa":
		return func(ctx context.Context) error {
			_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err
		}, nil
	}
	return nil, fmt.Errorf("unknown condition %q", args[0])
}

// healthzProbe GETs a loopback https URL. The components serve a self-signed
// certificate on their secure port and allow /healthz without credentials.
func healthzProbe(raw string) (func(context.Context) error, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if err := requireLoopback(u.Hostname()); err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback, self-signed
	}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s %s", u, resp.Status, body)
		}
		return nil
	}, nil
}
