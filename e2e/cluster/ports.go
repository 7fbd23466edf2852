package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
)

// runPorts prints N distinct free TCP ports on 127.0.0.1, one per line.
//
//	gemma-plane ports [--prefer P]... N
//
// A preferred port is used when it is free; a port already in use is replaced
// by one the kernel picks, and a note goes to stderr. All listeners are held
// open until every port is chosen, so the N ports are distinct.
func runPorts(args []string) int {
	fs := flag.NewFlagSet("ports", flag.ContinueOnError)
	var prefer intList
	fs.Var(&prefer, "prefer", "a port to use if it is free (repeatable; taken in order)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gemma-plane ports [--prefer P]... N")
		return 2
	}
	n, err := strconv.Atoi(fs.Arg(0))
	if err != nil || n < 1 || n > 64 {
		fmt.Fprintln(os.Stderr, "ports: N must be an integer between 1 and 64")
		return 2
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		want := 0
		if i < len(prefer) {
			want = prefer[i]
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(want)))
		if err != nil && want != 0 {
			fmt.Fprintf(os.Stderr, "ports: 127.0.0.1:%d is in use (%v); picking another\n", want, errors.Unwrap(err))
			l, err = net.Listen("tcp", "127.0.0.1:0")
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "ports: %v\n", err)
			return 1
		}
		held = append(held, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return 0
}

type intList []int

func (l *intList) String() string { return fmt.Sprint(*l) }
func (l *intList) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > 65535 {
		return fmt.Errorf("not a port: %q", s)
	}
	*l = append(*l, v)
	return nil
}

// requireLoopback refuses any address outside 127.0.0.0/8 (and "localhost").
func requireLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", host)
	}
	return nil
}
