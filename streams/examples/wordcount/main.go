// Command wordcount is Kafka Streams' word count, on package streams: it
// reads lines of text from one topic and writes, to another, the running
// count of every word it has seen, keyed by the word (a string), the count
// an 8-byte big-endian integer, as Kafka's LongSerializer writes it (kcat
// -s value=q reads it).
//
//	go run ./streams/examples/wordcount --bootstrap-server 127.0.0.1:9092 --input text --output counts
//
// The counts live in a persistent state store, backed by the changelog
// topic wordcount-counts-changelog: stopped (Ctrl-C) and started again, it
// goes on from the counts it had, and a clean stop leaves a checkpoint so
// that the restart restores nothing. Started on another machine (or with
// another --state-dir), it restores them from the changelog. Start it
// twice and the two instances share the input's partitions, as members of
// the consumer group "wordcount" (the application.id).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/admin"
	"klab.dev/klab/streams"
)

// settings is a repeatable --config name=value flag.
type settings []string

func (s *settings) String() string     { return strings.Join(*s, ",") }
func (s *settings) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	bootstrap := flag.String("bootstrap-server", "127.0.0.1:9092", "a broker to start from, host:port")
	input := flag.String("input", "text", "the topic of lines to count the words of")
	output := flag.String("output", "counts", "the topic the counts go to")
	appID := flag.String("application-id", "wordcount", "application.id: the consumer group, and the prefix of the internal topics")
	stateDir := flag.String("state-dir", "", "state.dir, where the counts are kept (default: Kafka Streams' /tmp/kafka-streams)")
	partitions := flag.Int("partitions", 3, "partitions of the input and output topics, if this creates them")
	var configs settings
	flag.Var(&configs, "config", "a Kafka Streams setting, name=value (num.stream.threads=2, commit.interval.ms=1000); repeatable")
	flag.Parse()

	if err := run(*bootstrap, *input, *output, *appID, *stateDir, int32(*partitions), configs); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

// topology is the word count, in the DSL: split lines into words, key
// each by itself (so a repartition follows), count per key, and write the
// counts' stream of updates to output.
func topology(input, output string) (*streams.Topology, error) {
	b := streams.NewStreamsBuilder()
	lines := streams.Stream(b, input, streams.Consumed[[]byte, string]{Key: streams.Bytes, Value: streams.String})
	words := streams.FlatMapValues(lines, func(_ []byte, line string) []string {
		return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
	})
	counts := streams.GroupBy(words, func(_ []byte, word string) string { return word },
		streams.Grouped[string, string]{Key: streams.String, Value: streams.String}).
		Count(streams.Materialized[string, int64]{Name: "counts"})
	counts.ToStream().To(output, streams.Produced[string, int64]{Key: streams.String, Value: streams.Int64})
	return b.Build()
}

func run(bootstrap, input, output, appID, stateDir string, partitions int32, configs []string) error {
	topo, err := topology(input, output)
	if err != nil {
		return err
	}
	fmt.Print(topo.Describe())

	cfg := streams.DefaultConfig()
	cfg.ApplicationID = appID
	cfg.BootstrapServers = strings.Split(bootstrap, ",")
	if stateDir != "" {
		cfg.StateDir = stateDir
	}
	for _, c := range configs {
		name, value, ok := strings.Cut(c, "=")
		if !ok {
			return fmt.Errorf("--config %q: want name=value", c)
		}
		if err := cfg.Set(name, value); err != nil {
			return err
		}
	}
	if err := createTopics(cfg.BootstrapServers, partitions, input, output); err != nil {
		return err
	}

	app, err := streams.New(topo, cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("counting the words of %s into %s (application.id %s, state in %s); Ctrl-C stops cleanly\n", input, output, appID, cfg.StateDir)
	last := app.State()
	for ctx.Err() == nil && app.State() != streams.Error {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
		if s := app.State(); s != last {
			fmt.Println("state:", last, "->", s)
			last = s
		}
	}
	closeErr := app.Close()
	if err := app.Err(); err != nil {
		return err
	}
	return closeErr
}

// createTopics makes the input and output topics if they do not exist, so
// that the example runs on a new cluster with one command.
func createTopics(bootstrap []string, partitions int32, topics ...string) error {
	a := admin.New(admin.Options{Bootstrap: bootstrap, ClientID: "wordcount-setup", Timeout: 15 * time.Second})
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var want []admin.NewTopic
	for _, t := range topics {
		want = append(want, admin.NewTopic{Name: t, Partitions: partitions, ReplicationFactor: -1})
	}
	results, err := a.CreateTopics(ctx, want...)
	for _, r := range results {
		switch {
		case r.Err == nil:
			fmt.Printf("created topic %s (%d partitions)\n", r.Name, r.Partitions)
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
		default:
			return fmt.Errorf("creating topic %s: %w", r.Name, r.Err)
		}
	}
	if len(results) == 0 && err != nil {
		return fmt.Errorf("creating topics on %s: %w", strings.Join(bootstrap, ","), err)
	}
	return nil
}
