package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const transactionsHelp = `klab transactions describe-producers --topic T --partition P
  the idempotent producers a partition's leader knows: for each, its epoch and
  the last sequence number it wrote (DescribeProducers, as kafka-transactions.sh).
Takes --bootstrap-server host:port (default 127.0.0.1:9092).`

// runTransactions is kafka-transactions.sh, as far as klab goes: before
// lesson 16 brings transactions, what a partition knows of its idempotent
// producers.
func runTransactions(args []string) error {
	if len(args) == 0 || args[0] != "describe-producers" {
		fmt.Println(transactionsHelp)
		if len(args) == 0 {
			return nil
		}
		return errors.New("unknown transactions command")
	}
	fs := flag.NewFlagSet("transactions describe-producers", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	topic := fs.String("topic", "", "the topic")
	partition := fs.Int("partition", -1, "the partition")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *topic == "" || *partition < 0 {
		return errors.New("--topic and --partition are required")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*bootstrap, ",")...), kgo.RequestRetries(2))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	described, err := kadm.NewClient(cl).DescribeProducers(ctx, kadm.TopicsSet{*topic: {int32(*partition): {}}})
	if err != nil {
		return err
	}
	p, ok := described[*topic].Partitions[int32(*partition)]
	if !ok {
		return fmt.Errorf("no answer for %s-%d", *topic, *partition)
	}
	if p.Err != nil {
		return fmt.Errorf("%s-%d: %w", *topic, *partition, errorDetail(p.Err, p.ErrMessage))
	}
	// kafka-transactions.sh's columns; klab has no transactions yet, so the
	// coordinator epoch is -1 and no transaction is open.
	fmt.Printf("%-12s %-14s %-23s %-13s %-14s %s\n", "ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset")
	for _, d := range p.ActiveProducers.Sorted() {
		txn := "None"
		if d.CurrentTxnStartOffset >= 0 {
			txn = fmt.Sprint(d.CurrentTxnStartOffset)
		}
		fmt.Printf("%-12d %-14d %-23d %-13d %-14d %s\n", d.ProducerID, d.ProducerEpoch, d.CoordinatorEpoch, d.LastSequence, d.LastTimestamp, txn)
	}
	return nil
}
