package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"klab.dev/klab/broker"
	"klab.dev/klab/cmd/klab/internal/brokerproc"
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
	console := fs.String("console", "127.0.0.1:0", "host:port of the broker's web console and /metrics (HTTP); port 0 picks a free one, empty serves none")
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
	cfg.Console = *console
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
		if b.ConsoleAddr() != "" {
			fmt.Printf("klab broker %d console: http://%s/ (metrics at /metrics)\n", cfg.NodeID, b.ConsoleAddr())
		}
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
	consoleAddr := fs.String("console", "127.0.0.1:8090", "host:port of the cluster's web console; broker N's own console listens on port+N")
	controls := fs.Bool("console-controls", false, "offer the console's buttons that stop, kill, pause and start brokers on a --console address that is not loopback (on loopback they are always offered)")
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

	// Broker N's console answers on the port after the cluster's own.
	consoleHost, consolePortText, err := net.SplitHostPort(*consoleAddr)
	if err != nil {
		return fmt.Errorf("--console: %w", err)
	}
	consolePort, err := strconv.Atoi(consolePortText)
	if err != nil || consolePort == 0 {
		return fmt.Errorf("--console %s: give a port (broker N's console takes the port + N)", *consoleAddr)
	}
	var consoles []string
	brokerArgs := make([][]string, *n)
	for i := range *n {
		id := i + 1
		consoles = append(consoles, net.JoinHostPort(consoleHost, strconv.Itoa(consolePort+id)))
		brokerArgs[i] = []string{"broker", "--id", strconv.Itoa(id), "--listen", addrs[i], "--gossip", seeds[i],
			"--seeds", strings.Join(seeds, ","), "--controller-quorum-voters", strings.Join(voters, ","),
			"--dir", filepath.Join(*dir, "broker-"+strconv.Itoa(id)), "--console", consoles[i]}
		if len(rackList) > 0 {
			brokerArgs[i] = append(brokerArgs[i], "--rack", rackList[i%len(rackList)])
		}
	}
	procs := brokerproc.New(self, brokerArgs)
	procs.OnExit = func(id int32, err error, stopping bool) {
		if !stopping {
			how := "stopped"
			if err != nil {
				how = fmt.Sprintf("exited (%v)", err)
			}
			fmt.Printf("[broker %d] %s. Start it again, with its data, from the console or in another terminal:\n  %s %s\n",
				id, how, restart, shellJoin(brokerArgs[id-1]))
		}
	}

	fmt.Printf("klab cluster: %d brokers\n", *n)
	for i := range *n {
		pid, err := procs.Start(int32(i + 1))
		if err != nil {
			procs.StopAll(15 * time.Second)
			return err
		}
		rack := ""
		if len(rackList) > 0 {
			rack = ", rack " + rackList[i%len(rackList)]
		}
		fmt.Printf("  broker %d: %s%s, pid %d, data in %s, console http://%s/\n", i+1, addrs[i], rack, pid, filepath.Join(*dir, "broker-"+strconv.Itoa(i+1)), consoles[i])
	}
	consoleURL, closeConsole, err := serveClusterConsole(*consoleAddr, consoles, procs, *controls)
	if err != nil {
		procs.StopAll(15 * time.Second)
		return err
	}
	defer closeConsole()
	fmt.Printf("\nbootstrap servers: %s\n", strings.Join(addrs, ","))
	fmt.Printf("console: %s (metrics: each broker's console /metrics)\n", consoleURL)
	fmt.Printf("try: kcat -b %s -L\n", addrs[0])
	fmt.Println("break it: kill -9 one broker's pid, or press its button in the console, and watch the others elect new leaders.")
	fmt.Printf("stop one cleanly: %s broker stop --id %d --dir %s --bootstrap-server %s\n", restart, min(2, *n), shellQuote(*dir), addrs[0])
	fmt.Println("Ctrl-C stops them all; their data stays for the next start.")
	<-ctx.Done()
	fmt.Println("\nstopping the brokers")
	procs.StopAll(15 * time.Second)
	return nil
}
