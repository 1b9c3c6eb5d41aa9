package perf

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FigureSets are the sets of figures Figures measures, in the order it
// runs them; FiguresConfig.Only picks among them.
var FigureSets = []string{"produce", "consume", "replicated", "one-partition", "fresh-topic", "failover", "memory"}

// FiguresConfig is one run of Figures.
type FiguresConfig struct {
	// Records is how many records each throughput figure on Partitions
	// partitions moves, on klab and on kfake each.
	Records int64
	// OnePartitionRecords is how many the one-partition figures move.
	OnePartitionRecords int64
	// FreshTopicRecords is how many go into the fresh and into the warm
	// topic.
	FreshTopicRecords int64
	RecordSize        int
	Partitions        int32
	Linger            time.Duration
	// LatencyThroughput is the pace, in records per second, of the run
	// whose p99 produce latency the replicated figure bounds.
	LatencyThroughput int64
	// Rounds is how many times each throughput figure is measured, klab
	// and kfake taking turns; the figure is the round with the median
	// ratio. Zero means once.
	Rounds int
	// Clients is how many franz-go producers share each produce step's
	// records, on klab and on kfake alike; zero means one.
	Clients int
	// FailoverTrials is how many times the failover figure kills a leader.
	FailoverTrials int
	// Only, if not empty, names the sets of FigureSets to measure.
	Only []string
	// Dir holds the brokers' data, each target in a folder of its own.
	Dir string
	// Klab is the klab binary: the failover and memory figures run
	// `klab broker` processes, as a user would.
	Klab string
	// Progress, if set, is told how far each step that moves records has
	// got; Step, if set, what a step that moves none (a failover trial, a
	// memory reading) is doing.
	Progress func(label string, p Progress)
	Step     func(msg string)
}

// Figure is one line of the table: what klab does, against a peer, and
// the target it should meet.
type Figure struct {
	Name string
	// Klab and Peer are the values compared, as printed, with their
	// units; Peer is "-" for a figure with no peer.
	Klab, Peer string
	// Ratio is klab's over the peer's, the number Target bounds; NaN when
	// Target bounds klab's value alone.
	Ratio  float64
	Target string // as printed: "≥ 1.20", "≤ 50 ms"
	Met    bool
	// Detail says more than the table's columns: the latencies, each
	// failover trial, the memory under load.
	Detail string
}

// Figures measures, in one run, what a user of Kafka would ask of klab,
// each figure against a peer in the same run (franz-go's in-process
// kfake, or klab itself in a state that should not matter), with the
// target it should meet:
//
//   - produce: acks=1, one broker, Partitions partitions: klab/kfake
//     records/s ≥ 1.2;
//   - consume: the same topic read from the start: ≥ 1.0;
//   - replicated: acks=all to three klab brokers, replication factor 3,
//     min.insync.replicas=2, against one kfake broker: ≥ 0.8; and klab's
//     p99 produce latency, paced at LatencyThroughput records/s, ≤ 50 ms;
//   - one-partition: one partition, acks=1 on one broker: ≥ 0.8; and
//     acks=all with replication factor 3: ≥ 0.5;
//   - fresh-topic: acks=all into a topic created the moment before,
//     against into a warm one on the same three brokers: ≥ 0.8;
//   - failover: the p50, over FailoverTrials, of the time from SIGKILL
//     of a leader's process until a producer with franz-go's defaults has
//     a write acknowledged: ≤ 2 s;
//   - memory: a broker process's resident memory after eight connections
//     each announced a 100 MB request and closed: ≤ 2× its idle size.
func Figures(ctx context.Context, cfg FiguresConfig) ([]Figure, error) {
	for _, name := range cfg.Only {
		if !slices.Contains(FigureSets, name) {
			return nil, fmt.Errorf("no figure set %q; the sets are %s", name, strings.Join(FigureSets, ", "))
		}
	}
	r := &figuresRun{cfg: cfg, ctx: ctx}
	defer r.close()
	runs := map[string]func() error{
		"produce":       r.produce,
		"consume":       r.consume,
		"replicated":    r.replicated,
		"one-partition": r.onePartition,
		"fresh-topic":   r.freshTopic,
		"failover":      r.failover,
		"memory":        r.memory,
	}
	for _, set := range FigureSets {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, set) {
			continue
		}
		if err := runs[set](); err != nil {
			return r.figures, fmt.Errorf("%s: %w", set, err)
		}
	}
	return r.figures, nil
}

// figuresRun is the state of one Figures run: the targets it has started
// (each on first use, and closed at the end) and the figures so far.
type figuresRun struct {
	cfg     FiguresConfig
	ctx     context.Context
	figures []Figure

	klab1, klab3, kfake *Target
	// filled says topicWide, on klab1 and on kfake, holds the records the
	// consume figure reads.
	filled bool
}

// The figures' topics: wide ones have FiguresConfig.Partitions
// partitions; the RF3 ones are on klab's three brokers (replication
// factor 3) and on kfake, the others on klab's single broker and on kfake.
const (
	topicWide        = "perf-wide"
	topicOne         = "perf-one"
	topicWideRF3     = "perf-wide-rf3"
	topicOneRF3      = "perf-one-rf3"
	topicFreshPrefix = "perf-fresh-"
	topicWarm        = "perf-warm"
)

func (r *figuresRun) close() {
	for _, t := range []*Target{r.klab1, r.klab3, r.kfake} {
		if t != nil {
			t.Close()
		}
	}
}

// one is klab's single broker, with topicWide and topicOne.
func (r *figuresRun) one() (Target, error) {
	if r.klab1 == nil {
		t, err := StartKlab(r.ctx, filepath.Join(r.cfg.Dir, "klab-1"), r.cfg.Partitions, topicWide)
		if err != nil {
			return Target{}, err
		}
		r.klab1 = &t
		if err := createTopics(r.ctx, t.Brokers, 1, 1, nil, []string{topicOne}); err != nil {
			return Target{}, err
		}
	}
	return *r.klab1, nil
}

// three is klab's three brokers, with topicWideRF3 and topicOneRF3,
// replication factor 3 and min.insync.replicas=2.
func (r *figuresRun) three() (Target, error) {
	if r.klab3 == nil {
		t, err := StartKlabCluster(r.ctx, filepath.Join(r.cfg.Dir, "klab-3"), 3, 2, r.cfg.Partitions, topicWideRF3)
		if err != nil {
			return Target{}, err
		}
		r.klab3 = &t
		if err := r.createReplicated(1, topicOneRF3); err != nil {
			return Target{}, err
		}
	}
	return *r.klab3, nil
}

// createReplicated creates topics on klab's three brokers, replication
// factor 3 and min.insync.replicas=2.
func (r *figuresRun) createReplicated(partitions int32, topics ...string) error {
	minISR := "2"
	return createTopics(r.ctx, r.klab3.Brokers, partitions, 3, map[string]*string{"min.insync.replicas": &minISR}, topics)
}

// fake is one kfake broker with every topic the figures use.
func (r *figuresRun) fake() (Target, error) {
	if r.kfake == nil {
		t, err := StartKfake(r.cfg.Partitions, topicWide, topicWideRF3)
		if err != nil {
			return Target{}, err
		}
		r.kfake = &t
		if err := createTopics(r.ctx, t.Brokers, 1, 1, nil, []string{topicOne, topicOneRF3}); err != nil {
			return Target{}, err
		}
	}
	return *r.kfake, nil
}

// produceTo produces records to topic on t with acks, as a measured step.
func (r *figuresRun) produceTo(t Target, topic, acks string, records int64) (Result, error) {
	res, err := Produce(r.ctx, ProduceConfig{
		Brokers: t.Brokers, Topic: topic, Records: records, RecordSize: r.cfg.RecordSize,
		Acks: acks, Linger: r.cfg.Linger, Clients: r.cfg.Clients,
		Progress: labelled(r.cfg.Progress, fmt.Sprintf("%s produce %s acks=%s", t.Name, topic, acks)),
	})
	if err != nil {
		return res, fmt.Errorf("%s: %w", t.Name, err)
	}
	return res, nil
}

// both measures on klab and on kfake, rounds times, and returns the
// round whose ratio of records/s is the median: on a shared machine one
// round can meet a neighbour's burst, and the median ignores it. The two
// take turns at going first (klab first in the first round when
// klabFirst), so that neither always meets the page cache and the garbage
// collector in the state the other left.
func both(rounds int, klabFirst bool, klab, kfake func() (Result, error)) (k, f Result, err error) {
	type round struct{ k, f Result }
	results := make([]round, max(rounds, 1))
	for i := range results {
		var k, f Result
		if klabFirst == (i%2 == 0) {
			if k, err = klab(); err == nil {
				f, err = kfake()
			}
		} else {
			if f, err = kfake(); err == nil {
				k, err = klab()
			}
		}
		if err != nil {
			return k, f, err
		}
		results[i] = round{k, f}
	}
	ratio := func(x round) float64 { return x.k.RecordsPerSec() / x.f.RecordsPerSec() }
	slices.SortFunc(results, func(a, b round) int { return cmp.Compare(ratio(a), ratio(b)) })
	median := results[len(results)/2]
	return median.k, median.f, nil
}

// addRate appends a figure whose target is a least ratio of records/s.
func (r *figuresRun) addRate(name string, klab, peer Result, least float64) {
	ratio := klab.RecordsPerSec() / peer.RecordsPerSec()
	r.figures = append(r.figures, Figure{
		Name: name, Klab: formatRate(klab), Peer: formatRate(peer),
		Ratio: ratio, Target: fmt.Sprintf("≥ %.2f", least), Met: ratio >= least,
		Detail: fmt.Sprintf("p50/p99 latency: klab %s/%s, peer %s/%s",
			formatMs(klab.Percentile(0.5)), formatMs(klab.Percentile(0.99)), formatMs(peer.Percentile(0.5)), formatMs(peer.Percentile(0.99))),
	})
	if len(klab.Latencies) == 0 {
		r.figures[len(r.figures)-1].Detail = ""
	}
}

func (r *figuresRun) produce() error {
	k, err := r.one()
	if err != nil {
		return err
	}
	f, err := r.fake()
	if err != nil {
		return err
	}
	kr, fr, err := both(r.cfg.Rounds, true,
		func() (Result, error) { return r.produceTo(k, topicWide, "1", r.cfg.Records) },
		func() (Result, error) { return r.produceTo(f, topicWide, "1", r.cfg.Records) })
	if err != nil {
		return err
	}
	r.filled = true
	r.addRate(fmt.Sprintf("produce acks=1, %d partitions", r.cfg.Partitions), kr, fr, 1.2)
	return nil
}

func (r *figuresRun) consume() error {
	k, err := r.one()
	if err != nil {
		return err
	}
	f, err := r.fake()
	if err != nil {
		return err
	}
	if !r.filled { // run alone: write what it reads
		for _, t := range []Target{k, f} {
			if _, err := r.produceTo(t, topicWide, "1", r.cfg.Records); err != nil {
				return err
			}
		}
		r.filled = true
	}
	consume := func(t Target) func() (Result, error) {
		return func() (Result, error) {
			res, err := Consume(r.ctx, ConsumeConfig{Brokers: t.Brokers, Topic: topicWide, Records: r.cfg.Records,
				Progress: labelled(r.cfg.Progress, t.Name+" consume "+topicWide)})
			if err != nil {
				err = fmt.Errorf("%s: %w", t.Name, err)
			}
			return res, err
		}
	}
	kr, fr, err := both(r.cfg.Rounds, false, consume(k), consume(f))
	if err != nil {
		return err
	}
	r.addRate(fmt.Sprintf("consume, %d partitions", r.cfg.Partitions), kr, fr, 1.0)
	return nil
}

// replicatedP99Limit is the most klab's p99 produce latency may be with
// acks=all and replication factor 3.
const replicatedP99Limit = 50 * time.Millisecond

func (r *figuresRun) replicated() error {
	k, err := r.three()
	if err != nil {
		return err
	}
	f, err := r.fake()
	if err != nil {
		return err
	}
	kr, fr, err := both(r.cfg.Rounds, true,
		func() (Result, error) { return r.produceTo(k, topicWideRF3, "all", r.cfg.Records) },
		func() (Result, error) { return r.produceTo(f, topicWideRF3, "all", r.cfg.Records) })
	if err != nil {
		return err
	}
	r.addRate(fmt.Sprintf("produce acks=all RF=3, %d partitions (peer: 1 kfake)", r.cfg.Partitions), kr, fr, 0.8)

	// The latency, at a pace both can keep: for latencyRunLength, or
	// Records if that is fewer.
	pace := r.cfg.LatencyThroughput
	if pace <= 0 {
		return nil
	}
	n := min(r.cfg.Records, pace*int64(latencyRunLength/time.Second))
	paced := func(t Target) func() (Result, error) {
		return func() (Result, error) {
			res, err := Produce(r.ctx, ProduceConfig{
				Brokers: t.Brokers, Topic: topicWideRF3, Records: n, RecordSize: r.cfg.RecordSize,
				Acks: "all", Linger: r.cfg.Linger, Throughput: pace,
				Progress: labelled(r.cfg.Progress, fmt.Sprintf("%s produce %s acks=all at %d/s", t.Name, topicWideRF3, pace)),
			})
			if err != nil {
				err = fmt.Errorf("%s: %w", t.Name, err)
			}
			return res, err
		}
	}
	kr, fr, err = both(1, false, paced(k), paced(f)) // a latency, not a ratio: one round
	if err != nil {
		return err
	}
	p99 := kr.Percentile(0.99)
	r.figures = append(r.figures, Figure{
		Name: fmt.Sprintf("  its p99 produce latency at %d rec/s", pace), Klab: formatMs(p99), Peer: formatMs(fr.Percentile(0.99)),
		Ratio: math.NaN(), Target: "klab ≤ " + formatMs(replicatedP99Limit), Met: p99 <= replicatedP99Limit,
		Detail: fmt.Sprintf("p50/p99 latency: klab %s/%s, peer %s/%s", formatMs(kr.Percentile(0.5)), formatMs(p99), formatMs(fr.Percentile(0.5)), formatMs(fr.Percentile(0.99))),
	})
	return nil
}

// latencyRunLength is how long the paced run of the latency figure lasts.
const latencyRunLength = 5 * time.Second

func (r *figuresRun) onePartition() error {
	k1, err := r.one()
	if err != nil {
		return err
	}
	k3, err := r.three()
	if err != nil {
		return err
	}
	f, err := r.fake()
	if err != nil {
		return err
	}
	n := r.cfg.OnePartitionRecords
	kr, fr, err := both(r.cfg.Rounds, false,
		func() (Result, error) { return r.produceTo(k1, topicOne, "1", n) },
		func() (Result, error) { return r.produceTo(f, topicOne, "1", n) })
	if err != nil {
		return err
	}
	r.addRate("produce acks=1, 1 partition", kr, fr, 0.8)
	kr, fr, err = both(r.cfg.Rounds, true,
		func() (Result, error) { return r.produceTo(k3, topicOneRF3, "all", n) },
		func() (Result, error) { return r.produceTo(f, topicOneRF3, "all", n) })
	if err != nil {
		return err
	}
	r.addRate("produce acks=all RF=3, 1 partition (peer: 1 kfake)", kr, fr, 0.5)
	return nil
}

// freshTopic writes into a topic the moment it is created, against into
// a warm one: a new topic's partitions need leaders, followers that fetch
// and an ISR before an acks=all write is acknowledged, and a producer
// that meets a topic before all that is done waits and retries.
func (r *figuresRun) freshTopic() error {
	k, err := r.three()
	if err != nil {
		return err
	}
	n := r.cfg.FreshTopicRecords
	if err := r.createReplicated(r.cfg.Partitions, topicWarm); err != nil {
		return err
	}
	if _, err := r.produceTo(k, topicWarm, "all", n); err != nil { // warming it up
		return err
	}
	// Each round writes into a new topic, against the warm one (both
	// calls it the peer). A name never used, so that a second run in the
	// same --dir is fresh too.
	round := 0
	fresh := func() (Result, error) {
		round++
		name := fmt.Sprintf("%s%s-%d", topicFreshPrefix, time.Now().Format("150405.000"), round)
		if err := r.createReplicated(r.cfg.Partitions, name); err != nil {
			return Result{}, err
		}
		return r.produceTo(k, name, "all", n)
	}
	fr, wr, err := both(r.cfg.Rounds, true, fresh,
		func() (Result, error) { return r.produceTo(k, topicWarm, "all", n) })
	if err != nil {
		return err
	}
	r.addRate("fresh RF=3 topic, acks=all (peer: a warm one)", fr, wr, 0.8)
	return nil
}

// failoverTarget is the most the p50 failover, as a client sees it, may take.
const failoverTarget = 2 * time.Second

func (r *figuresRun) failover() error {
	res, err := Failover(r.ctx, FailoverConfig{
		Klab: r.cfg.Klab, Dir: filepath.Join(r.cfg.Dir, "failover"), Trials: r.cfg.FailoverTrials,
		Trial: func(t FailoverTrial) {
			if r.cfg.Step != nil {
				r.cfg.Step(fmt.Sprintf("failover trial %d/%d: killed leader %d (pid %d); a write was acknowledged %v later",
					t.N, r.cfg.FailoverTrials, t.Leader, t.PID, t.Took.Round(time.Millisecond)))
			}
		},
	})
	if err != nil {
		return err
	}
	var took []string
	for _, t := range res.Trials {
		took = append(took, t.Took.Round(time.Millisecond).String())
	}
	p50 := res.Percentile(0.5)
	r.figures = append(r.figures, Figure{
		Name: fmt.Sprintf("failover, SIGKILL to next write, p50 of %d", len(res.Trials)),
		Klab: p50.Round(time.Millisecond).String(), Peer: "-", Ratio: math.NaN(),
		Target: "klab ≤ " + failoverTarget.String(), Met: p50 <= failoverTarget,
		Detail: "trials: " + strings.Join(took, ", "),
	})
	return nil
}

// The memory figure: eight connections, each announcing a request of
// socket.request.max.bytes.
const (
	memoryConnections   = 8
	memoryDeclaredBytes = 104_857_600
	memorySettleTimeout = 30 * time.Second
)

func (r *figuresRun) memory() error {
	res, err := Memory(r.ctx, MemoryConfig{
		Klab: r.cfg.Klab, Dir: filepath.Join(r.cfg.Dir, "memory"),
		Connections: memoryConnections, DeclaredBytes: memoryDeclaredBytes, SettleTimeout: memorySettleTimeout,
		Step: r.cfg.Step,
	})
	if err != nil {
		return err
	}
	ratio := float64(res.After) / float64(res.Idle)
	r.figures = append(r.figures, Figure{
		Name: fmt.Sprintf("broker RSS after %d × 100 MB size prefixes (peer: idle)", memoryConnections),
		Klab: formatMB(res.After), Peer: formatMB(res.Idle), Ratio: ratio, Target: "≤ 2.00", Met: ratio <= 2,
		Detail: fmt.Sprintf("RSS with the %d connections open %s, read %v after they closed; address space (VmSize) idle %s, with the connections open %s",
			memoryConnections, formatMB(res.Loaded), res.Settled.Round(100*time.Millisecond), formatMB(res.VirtualIdle), formatMB(res.VirtualLoaded)),
	})
	return nil
}

// formatRate writes a run's records per second.
func formatRate(r Result) string { return fmt.Sprintf("%.0f rec/s", r.RecordsPerSec()) }

// formatMs writes a latency in milliseconds, to a tenth.
func formatMs(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
