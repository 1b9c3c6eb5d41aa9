package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"klab.dev/klab/broker"
)

// runBroker runs one broker process until Ctrl-C or SIGTERM.
func runBroker(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	id := fs.Int("id", 1, "node.id of this broker")
	listen := fs.String("listen", "127.0.0.1:9092", "host:port to listen on (listeners)")
	dir := fs.String("dir", "klab-data", "data directory (log.dirs)")
	gossip := fs.String("gossip", "", "host:port to gossip on, UDP and TCP (default: the listen host, a free port)")
	seeds := fs.String("seeds", "", "other brokers' gossip addresses, comma-separated; this broker's own may be among them")
	rack := fs.String("rack", "", "broker.rack")
	voters := fs.String("controller-quorum-voters", "", "controller.quorum.voters: the metadata quorum's voters, id@host:port,... (default: the brokers that form the cluster)")
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
	if *gossip != "" {
		cfg.Gossip = *gossip
	}
	if *seeds != "" {
		cfg.Seeds = strings.Split(*seeds, ",")
	}
	if *voters != "" {
		cfg.QuorumVoters = *voters
	}
	if *rack != "" {
		cfg.Rack = *rack
		// A rack is there to be used: send consumers to the replica in theirs.
		cfg.ReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
	}
	if len(cfg.Seeds) > 0 {
		fmt.Printf("klab broker %d: waiting for the other brokers (seeds %s) to form the cluster\n", cfg.NodeID, strings.Join(cfg.Seeds, ","))
	}
	return serve(cfg, func(b *broker.Broker) {
		fmt.Printf("klab broker %d listening on %s, gossip on %s, data in %s, cluster id %s\n", cfg.NodeID, b.Addr(), b.GossipAddr(), cfg.DataDir, b.ClusterID())
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
	// The pid file is how `klab broker stop` finds this process, as
	// kafka-server-stop.sh finds Kafka's by its command line.
	pidFile := filepath.Join(cfg.DataDir, brokerPidFile)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		b.Close()
		return err
	}
	started(b)
	<-ctx.Done()
	fmt.Println("shutting down: moving leadership away, leaving the cluster, closing connections and flushing logs")
	err = b.Close()
	os.Remove(pidFile)
	if err != nil {
		return err
	}
	fmt.Println("stopped")
	return nil
}

// runCluster runs a local cluster: each broker is a `klab broker` child
// process, so that any one of them can be killed (kill -9 <pid>) to watch
// the cluster elect new leaders.
func runCluster(args []string) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	dir := fs.String("dir", "klab-data", "data directory; broker N keeps its data in <dir>/broker-N")
	n := fs.Int("brokers", 3, "how many brokers")
	port := fs.Int("port", 9092, "Kafka port of broker 1; broker N listens on port+N-1")
	gossipPort := fs.Int("gossip-port", 7946, "gossip port of broker 1; broker N gossips on gossip-port+N-1")
	racks := fs.String("racks", "", "racks, comma-separated, given to the brokers in turn (broker.rack)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return errors.New("--brokers must be at least 1")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	restart := restartCommand(self)
	var rackList []string
	if *racks != "" {
		rackList = strings.Split(*racks, ",")
	}
	var seeds, addrs, voters []string
	for i := range *n {
		seeds = append(seeds, "127.0.0.1:"+strconv.Itoa(*gossipPort+i))
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(*port+i))
		voters = append(voters, strconv.Itoa(i+1)+"@"+addrs[i])
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("klab cluster: %d brokers\n", *n)
	var wg sync.WaitGroup
	procs := make([]*exec.Cmd, *n)
	for i := range *n {
		id := i + 1
		brokerArgs := []string{"broker", "--id", strconv.Itoa(id), "--listen", addrs[i], "--gossip", seeds[i],
			"--seeds", strings.Join(seeds, ","), "--controller-quorum-voters", strings.Join(voters, ","),
			"--dir", filepath.Join(*dir, "broker-"+strconv.Itoa(id))}
		if len(rackList) > 0 {
			brokerArgs = append(brokerArgs, "--rack", rackList[i%len(rackList)])
		}
		cmd := exec.Command(self, brokerArgs...)
		cmd.Stdin = nil
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			return err
		}
		procs[i] = cmd
		rack := ""
		if len(rackList) > 0 {
			rack = ", rack " + rackList[i%len(rackList)]
		}
		fmt.Printf("  broker %d: %s%s, pid %d, data in %s\n", id, addrs[i], rack, cmd.Process.Pid, filepath.Join(*dir, "broker-"+strconv.Itoa(id)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			prefix(out, fmt.Sprintf("[broker %d] ", id))
			err := cmd.Wait()
			if ctx.Err() == nil {
				fmt.Printf("[broker %d] exited (%v). Start it again, with its data, in another terminal:\n  %s %s\n",
					id, err, restart, shellJoin(brokerArgs))
			}
		}()
	}
	fmt.Printf("\nbootstrap servers: %s\n", strings.Join(addrs, ","))
	fmt.Printf("try: kcat -b %s -L\n", addrs[0])
	fmt.Println("break it: kill -9 one broker's pid and watch the others elect new leaders.")
	fmt.Printf("stop one cleanly: %s broker stop --id %d --dir %s --bootstrap-server %s\n", restart, min(2, *n), shellQuote(*dir), addrs[0])
	fmt.Println("Ctrl-C stops them all; their data stays for the next start.")
	<-ctx.Done()
	fmt.Println("\nstopping the brokers")
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		for _, p := range procs {
			p.Process.Kill()
		}
		<-done
	}
	return nil
}

// prefix copies r to stdout line by line, each line prefixed.
func prefix(r io.Reader, p string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Println(p + sc.Text())
	}
}
