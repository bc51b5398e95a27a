package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/tollgate/tollgate/proxy/simulator"
)

// runSimulator is `tollgate simulator`: the upstream simulator alone.
func runSimulator(args []string) error {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9090", "address to serve on")
	mode := fs.String("mode", "anthropic", "anthropic (Messages API with SSE); bedrock is not built yet")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mode != "anthropic" {
		return fmt.Errorf("mode %q is not available (anthropic only for now)", *mode)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sim := simulator.New(simulator.Config{})
	log.Printf("simulator (%s) serving on %s", *mode, ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		sim.Shutdown()
	}()
	return sim.Serve(ln)
}

func netipAddrPort(a net.Addr) (netip.AddrPort, error) { return netip.ParseAddrPort(a.String()) }
