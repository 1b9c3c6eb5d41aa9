package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"klab.dev/klab/broker"
)

// runBroker runs one broker process until Ctrl-C or SIGTERM.
func runBroker(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	id := fs.Int("id", 1, "node.id of this broker")
	listen := fs.String("listen", "127.0.0.1:9092", "host:port to listen on (listeners)")
	dir := fs.String("dir", "klab-data", "data directory (log.dirs)")
	config := fs.String("config", "", "a server.properties file of Kafka settings; the flags above win over it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := broker.DefaultConfig()
	if *config != "" {
		f, err := os.Open(*config)
		if err != nil {
			return err
		}
		err = cfg.LoadProperties(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *config, err)
		}
	}
	// Flags given on the command line override the file.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["id"] || *config == "" {
		cfg.NodeID = int32(*id)
	}
	if set["listen"] || *config == "" {
		cfg.Listen = *listen
	}
	if set["dir"] || *config == "" {
		cfg.DataDir = *dir
	}
	return serve(cfg, func(b *broker.Broker) {
		fmt.Printf("klab broker %d listening on %s, data in %s, cluster id %s\n", cfg.NodeID, b.Addr(), cfg.DataDir, b.ClusterID())
	})
}

// runCluster runs a local cluster in this process, with its data in
// ./klab-data. Until replication (lesson 06) it is one broker.
func runCluster(args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	dir := fs.String("dir", "klab-data", "data directory")
	port := fs.Int("port", 9092, "port of the first broker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := broker.DefaultConfig()
	cfg.DataDir = *dir + "/broker-1"
	cfg.Listen = "127.0.0.1:" + strconv.Itoa(*port)
	return serve(cfg, func(b *broker.Broker) {
		fmt.Printf("klab cluster: 1 broker (replication, and so more brokers, arrives in lesson 06)\n")
		fmt.Printf("  broker 1: %s, data in %s\n", b.Addr(), cfg.DataDir)
		fmt.Printf("\nbootstrap server: %s\n", b.Addr())
		fmt.Printf("try: kcat -b %s -L\n", b.Addr())
		fmt.Println("Ctrl-C stops it; its data stays for the next start.")
	})
}

// serve starts a broker, reports it, and closes it cleanly on Ctrl-C or SIGTERM.
func serve(cfg broker.Config, started func(*broker.Broker)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := broker.Start(cfg)
	if err != nil {
		return err
	}
	started(b)
	<-ctx.Done()
	fmt.Println("\nshutting down: closing connections and flushing logs")
	if err := b.Close(); err != nil {
		return err
	}
	fmt.Println("stopped")
	return nil
}
