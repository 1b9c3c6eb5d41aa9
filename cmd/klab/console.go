package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
)

// properties collects repeated -X name=value flags.
type properties [][2]string

func (p *properties) String() string { return "" }

func (p *properties) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want name=value, got %q", v)
	}
	*p = append(*p, [2]string{name, value})
	return nil
}

// runProduce is the console producer, built on the course's producer: a
// record per line of standard input.
func runProduce(args []string) error {
	return produceLines(args, os.Stdin, os.Stderr)
}

func produceLines(args []string, in io.Reader, errOut io.Writer) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	topic := fs.String("topic", "", "the topic to write to")
	sep := fs.String("key-separator", "", "split each line at the first SEP into key and value (default: no key)")
	var props properties
	fs.Var(&props, "X", "a producer property by its Java name, name=value (acks, linger.ms, compression.type, ...); repeat for more")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *topic == "" {
		return errors.New("--topic is required")
	}
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = strings.Split(*bootstrap, ",")
	cfg.MaxBlock = consoleMaxBlock
	for _, p := range props {
		if err := cfg.Set(p[0], p[1]); err != nil {
			return err
		}
	}
	// Ask for the topic before reading a line, so that a missing one is
	// reported at once, even to someone who has not typed anything yet.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.MaxBlock)
	_, err := partitionCount(ctx, cfg.BootstrapServers, *topic)
	cancel()
	if err != nil {
		return err
	}
	p, err := producer.New(cfg)
	if err != nil {
		return err
	}
	if on, why := p.Idempotent(); !on && cfg.EnableIdempotence {
		fmt.Fprintln(errOut, "klab produce:", why) // as the Java client logs it
	}
	var failed atomic.Int64
	var missing atomic.Pointer[error] // the topic went away: stop reading
	report := func(_ producer.RecordMetadata, err error) {
		if err == nil {
			return
		}
		failed.Add(1)
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			missing.CompareAndSwap(nil, &err)
		} else if failed.Load() <= 10 {
			fmt.Fprintln(errOut, "klab produce:", err)
		}
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for missing.Load() == nil && sc.Scan() {
		r := &producer.Record{Topic: *topic, Value: []byte(sc.Text())}
		if *sep != "" {
			if k, v, ok := strings.Cut(sc.Text(), *sep); ok {
				r.Key, r.Value = []byte(k), []byte(v)
			}
		}
		p.SendAsync(r, report)
	}
	closeErr := p.Close() // sends what is buffered and waits for every answer
	if err := sc.Err(); err != nil {
		return err
	}
	if err := missing.Load(); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.MaxBlock)
		defer cancel()
		if _, merr := partitionCount(ctx, cfg.BootstrapServers, *topic); merr != nil {
			return merr // still missing: the error says how to create it
		}
		return *err
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d records were not written", n)
	}
	return closeErr
}

// consoleMaxBlock is max.block.ms for klab produce, unless -X sets it: how
// long a send waits for its topic's metadata. Someone at a console should
// hear within seconds that the topic does not exist, not after the Java
// client's default of a minute.
const consoleMaxBlock = 5 * time.Second

// runConsume is the console consumer, built on the course's consumer.
func runConsume(args []string) error {
	ctx, stop := signalContext()
	defer stop()
	return consumeRecords(ctx, args, os.Stdout)
}

func consumeRecords(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	topic := fs.String("topic", "", "the topic to read")
	fromBeginning := fs.Bool("from-beginning", false, "start at the earliest offset (default: the end, new records only)")
	partition := fs.Int("partition", -1, "read only this partition (default: all)")
	offset := fs.Int64("offset", -1, "start at this offset (needs --partition)")
	maxMessages := fs.Int("max-messages", 0, "exit after this many records (default: run until Ctrl-C)")
	format := fs.String("format", `%s\n`, `how to print a record: %t topic, %p partition, %o offset, %k key, %s value, %T timestamp (ms), \n, \t`)
	group := fs.String("group", "", "join this consumer group: the group assigns the partitions, and what is read is committed")
	var props properties
	fs.Var(&props, "X", "a consumer property by its Java name, name=value; repeat for more")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *topic == "":
		return errors.New("--topic is required")
	case *group != "" && (*partition >= 0 || *offset >= 0):
		return errors.New("--group cannot be used with --partition or --offset: the group assigns the partitions, and they start at its commits")
	case *offset >= 0 && *partition < 0:
		return errors.New("--offset needs --partition")
	}
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers = strings.Split(*bootstrap, ",")
	cfg.GroupID = *group
	if *fromBeginning {
		cfg.AutoOffsetReset = "earliest"
	}
	for _, p := range props {
		if err := cfg.Set(p[0], p[1]); err != nil {
			return err
		}
	}
	c, err := consumer.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close() // a member of a group commits (auto commit) and leaves here
	if *group != "" {
		// Ask for the topic first, so that a missing one is reported at
		// once rather than as a group that never assigns anything.
		if _, err := topicPartitions(ctx, cfg.BootstrapServers, *topic, -1); err != nil {
			return err
		}
		if err := c.Subscribe(*topic); err != nil {
			return err
		}
	} else {
		tps, err := topicPartitions(ctx, cfg.BootstrapServers, *topic, *partition)
		if err != nil {
			return err
		}
		c.Assign(tps...)
		if *offset >= 0 {
			if err := c.Seek(tps[0], *offset); err != nil {
				return err
			}
		}
	}
	w := bufio.NewWriter(out)
	defer w.Flush()
	seen := 0
	for *maxMessages == 0 || seen < *maxMessages {
		recs, err := c.Poll(ctx)
		if errors.Is(err, context.Canceled) {
			return nil // Ctrl-C
		}
		if err != nil {
			return err
		}
		for i, r := range recs {
			if *maxMessages > 0 && seen == *maxMessages {
				unprinted(c, recs[i:])
				break
			}
			w.WriteString(formatRecord(*format, r))
			seen++
		}
		w.Flush()
	}
	return nil
}

// unprinted moves each partition back to the first of the records that
// --max-messages left unprinted, so that a group commits only what was
// printed and the next consumer of the group prints the rest.
func unprinted(c *consumer.Consumer, recs []consumer.Record) {
	moved := map[consumer.TopicPartition]bool{}
	for _, r := range recs {
		tp := consumer.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if !moved[tp] {
			moved[tp] = true
			c.Seek(tp, r.Offset)
		}
	}
}

// topicPartitions lists the partitions to read: one, or all of the topic's.
func topicPartitions(ctx context.Context, bootstrap []string, topic string, only int) ([]consumer.TopicPartition, error) {
	if only >= 0 {
		return []consumer.TopicPartition{{Topic: topic, Partition: int32(only)}}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	n, err := partitionCount(ctx, bootstrap, topic)
	if err != nil {
		return nil, err
	}
	tps := make([]consumer.TopicPartition, n)
	for i := range tps {
		tps[i] = consumer.TopicPartition{Topic: topic, Partition: int32(i)}
	}
	return tps, nil
}

// formatRecord prints a record as kcat's -f does.
func formatRecord(format string, r consumer.Record) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if i+1 < len(format) && (ch == '%' || ch == '\\') {
			i++
			switch s := string([]byte{ch, format[i]}); s {
			case "%t":
				b.WriteString(r.Topic)
			case "%p":
				b.WriteString(strconv.Itoa(int(r.Partition)))
			case "%o":
				b.WriteString(strconv.FormatInt(r.Offset, 10))
			case "%k":
				b.Write(r.Key)
			case "%s":
				b.Write(r.Value)
			case "%T":
				b.WriteString(strconv.FormatInt(r.Timestamp.UnixMilli(), 10))
			case "%%":
				b.WriteByte('%')
			case `\n`:
				b.WriteByte('\n')
			case `\t`:
				b.WriteByte('\t')
			case `\\`:
				b.WriteByte('\\')
			default:
				b.WriteString(s)
			}
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

// partitionCount asks the cluster how many partitions a topic has. For a
// topic that does not exist, the error says how to create it.
func partitionCount(ctx context.Context, bootstrap []string, topic string) (int, error) {
	cluster := client.NewCluster(bootstrap, "klab-console")
	defer cluster.Close()
	if err := cluster.Refresh(ctx, topic); err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("%w\nklab creates no topic on first use (auto.create.topics.enable=false); create it with\n"+
				"  klab topics create --topic %s --partitions 3 --replication-factor %d --bootstrap-server %s",
				err, topic, min(3, max(1, cluster.BrokerCount())), strings.Join(bootstrap, ","))
		}
		return 0, err
	}
	n := len(cluster.Partitions(topic))
	if n == 0 {
		return 0, fmt.Errorf("topic %s has no partitions", topic)
	}
	return n, nil
}
