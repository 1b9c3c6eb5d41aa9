package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/membership"
)

// perfFailover measures how long a partition has no leader that takes
// writes after its leader's process is killed: three `klab broker`
// processes, a topic with replication factor 3 and min.insync.replicas=2;
// each trial SIGKILLs the leader and times, from the kill, until an
// acks=all write succeeds; then starts the killed broker again and waits
// for it to be back in the ISR.
func perfFailover(args []string) error {
	fs := flag.NewFlagSet("perf failover", flag.ContinueOnError)
	trials := fs.Int("trials", 10, "how many times to kill a leader")
	dir := fs.String("dir", "", "the brokers' data directory (default: a temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, stop := signalContext()
	defer stop()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	c, err := startProcesses(self, work, 3)
	if err != nil {
		return err
	}
	defer c.stop()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DefaultProduceTopic("failover"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.ProduceRequestTimeout(time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.MetadataMinAge(10*time.Millisecond), kgo.RecordDeliveryTimeout(time.Minute))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := waitBrokers(ctx, c.addrs, 3); err != nil {
		return err
	}
	two := "2"
	if resp, err := adm.CreateTopics(ctx, 1, 3, map[string]*string{"min.insync.replicas": &two}, "failover"); err != nil || resp.Error() != nil {
		return errors.Join(err, resp.Error())
	}
	fmt.Printf("klab perf failover: 3 broker processes, topic failover (1 partition, replication factor 3, min.insync.replicas=2), %d trials\n", *trials)
	var took []time.Duration
	for trial := 1; trial <= *trials; trial++ {
		leader, err := waitFullISR(ctx, c.addrs, "failover")
		if err != nil {
			return err
		}
		if err := cl.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
			return fmt.Errorf("trial %d: writing before the kill: %w", trial, err)
		}
		start := time.Now()
		pid, err := c.kill(leader)
		if err != nil {
			return err
		}
		if err := cl.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
			return fmt.Errorf("trial %d: writing after the kill: %w", trial, err)
		}
		d := time.Since(start)
		took = append(took, d)
		fmt.Printf("  trial %2d: killed leader %d (pid %d); a new leader took an acks=all write after %v\n", trial, leader, pid, d.Round(time.Millisecond))
		if _, err := c.start(leader); err != nil {
			return err
		}
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	pct := func(p float64) time.Duration { return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))] }
	fmt.Printf("\nfailover, SIGKILL to the next acknowledged write: p50 %v, p90 %v, max %v (%d trials)\n",
		pct(0.5).Round(time.Millisecond), pct(0.9).Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), len(sorted))
	return nil
}

// freshMetadata asks the first broker of addrs that answers for the
// cluster's metadata, on a new connection: franz-go's client keeps
// metadata answers for a while, and these waits need today's.
func freshMetadata(ctx context.Context, addrs []string, topics ...string) (*kmsg.MetadataResponse, error) {
	var err error
	for _, addr := range addrs {
		var conn *client.Conn
		if conn, err = client.Dial(ctx, addr, "klab-perf"); err != nil {
			continue
		}
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = &t
			req.Topics = append(req.Topics, rt)
		}
		var resp kmsg.Response
		resp, err = conn.Request(ctx, req)
		conn.Close()
		if err == nil {
			return resp.(*kmsg.MetadataResponse), nil
		}
	}
	return nil, err
}

// waitBrokers waits until the cluster has n live brokers and an active controller.
func waitBrokers(ctx context.Context, addrs []string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		md, err := freshMetadata(ctx, addrs)
		if err == nil && len(md.Brokers) == n && md.ControllerID >= 0 {
			return nil
		}
		if err == nil {
			last = fmt.Sprintf("%d brokers, controller %d", len(md.Brokers), md.ControllerID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the %d brokers did not form a cluster within a minute: %s", n, last)
}

// waitFullISR waits until partition 0 of topic has its three replicas in
// sync and a leader, and returns the leader.
func waitFullISR(ctx context.Context, addrs []string, topic string) (int32, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		md, err := freshMetadata(ctx, addrs, topic)
		if err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) > 0 {
			if p := md.Topics[0].Partitions[0]; p.Leader >= 0 && len(p.ISR) == 3 && p.ErrorCode == 0 {
				return p.Leader, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return 0, errors.New("the partition did not get three in-sync replicas within a minute")
}

// processes are `klab broker` child processes forming one cluster, on
// free loopback ports, each broker's output in <dir>/broker-N.log.
type processes struct {
	*brokerProcesses
	addrs  []string // Kafka listeners, broker id's at id-1
	gossip []string
}

// startProcesses starts n brokers, each a process of the klab binary at
// bin, on free loopback ports, with their data under dir.
func startProcesses(bin, dir string, n int) (*processes, error) {
	addrs, err := membership.FreeLoopbackAddrs(2 * n)
	if err != nil {
		return nil, err
	}
	c := &processes{addrs: addrs[:n], gossip: addrs[n:]}
	args := make([][]string, n)
	for i := range n {
		id := strconv.Itoa(i + 1)
		args[i] = []string{"broker", "--id", id, "--listen", c.addrs[i], "--gossip", c.gossip[i],
			"--seeds", strings.Join(c.gossip, ","), "--dir", filepath.Join(dir, "broker-"+id)}
	}
	c.brokerProcesses = newBrokerProcesses(bin, args)
	c.logDir = dir
	for i := range n {
		if _, err := c.start(int32(i + 1)); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// stop stops every broker cleanly, or kills it after 10 s.
func (c *processes) stop() { c.stopAll(10 * time.Second) }
