package perf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/membership"
)

// StartKlabCluster starts n klab brokers in this process, on loopback
// ports, broker N's data on disk in dir/broker-N and its warnings in
// dir/broker-N.log, and creates the topics with the given
// partitions, replication factor n and min.insync.replicas minISR.
func StartKlabCluster(ctx context.Context, dir string, n int, minISR int, partitions int32, topics ...string) (Target, error) {
	seeds, err := membership.FreeLoopbackAddrs(n)
	if err != nil {
		return Target{}, err
	}
	brokers := make([]*broker.Broker, n)
	logs := make([]*os.File, n) // broker N's warnings in dir/broker-N.log
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := broker.DefaultConfig()
			cfg.NodeID = int32(i + 1)
			cfg.Listen, cfg.Gossip, cfg.Seeds = "127.0.0.1:0", seeds[i], seeds
			cfg.DataDir = filepath.Join(dir, "broker-"+strconv.Itoa(i+1))
			logs[i], errs[i] = warningsTo(filepath.Join(dir, "broker-"+strconv.Itoa(i+1)+".log"))
			if errs[i] != nil {
				return
			}
			cfg.Logger = slog.New(slog.NewTextHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelWarn}))
			brokers[i], errs[i] = broker.Start(cfg)
		}()
	}
	wg.Wait()
	t := Target{Name: fmt.Sprintf("klab×%d", n), Close: func() {
		for _, b := range brokers {
			if b != nil {
				b.Close()
			}
		}
		for _, log := range logs {
			if log != nil {
				log.Close()
			}
		}
	}}
	if err := errors.Join(errs...); err != nil {
		t.Close()
		return Target{}, err
	}
	for _, b := range brokers {
		t.Brokers = append(t.Brokers, b.Addr())
	}
	minISRText := strconv.Itoa(minISR)
	if err := createTopics(ctx, t.Brokers, partitions, int16(n), map[string]*string{"min.insync.replicas": &minISRText}, topics); err != nil {
		t.Close()
		return Target{}, err
	}
	return t, nil
}

// CompareReplicated produces with acks=all to a three-broker klab cluster,
// every partition on all three (replication factor 3,
// min.insync.replicas=2), and to one kfake broker, which replicates
// nothing: what replication costs, measured against a peer in one run.
func CompareReplicated(ctx context.Context, cfg CompareConfig) (Pair, error) {
	const topic = "perf-replicated"
	k, err := StartKlabCluster(ctx, cfg.Dir, 3, 2, cfg.Partitions, topic)
	if err != nil {
		return Pair{}, err
	}
	defer k.Close()
	f, err := StartKfake(cfg.Partitions, topic)
	if err != nil {
		return Pair{}, err
	}
	defer f.Close()
	kr, err := produceTo(ctx, k, cfg, topic, "all")
	if err != nil {
		return Pair{}, fmt.Errorf("%s: %w", k.Name, err)
	}
	fr, err := produceTo(ctx, f, cfg, topic, "all")
	if err != nil {
		return Pair{}, fmt.Errorf("%s: %w", f.Name, err)
	}
	return newPair("produce acks=all RF=3", kr, fr), nil
}
