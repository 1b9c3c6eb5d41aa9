package streams_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// ticker is a processor that schedules punctuations in Init and records
// each one as "name@offset-from-base".
type ticker struct {
	schedules []tick
	fired     *[]string
	ctx       *streams.ProcessorContext
}

type tick struct {
	name     string
	interval time.Duration
	typ      streams.PunctuationType
	// cancelAfter cancels the punctuation after it fired this many
	// times (0: never).
	cancelAfter int
	// cancels is the name of another punctuation this one cancels when
	// it fires.
	cancels string
}

func (p *ticker) Init(ctx *streams.ProcessorContext) error {
	p.ctx = ctx
	handles := map[string]streams.Cancellable{}
	for _, s := range p.schedules {
		fired := 0
		handle, err := ctx.Schedule(s.interval, s.typ, func(now time.Time) error {
			*p.fired = append(*p.fired, s.name+"@"+now.Sub(base).String())
			fired++
			if s.cancelAfter > 0 && fired == s.cancelAfter {
				handles[s.name].Cancel()
			}
			if s.cancels != "" {
				handles[s.cancels].Cancel()
			}
			return nil
		})
		if err != nil {
			return err
		}
		handles[s.name] = handle
	}
	return nil
}

func (p *ticker) Process(r streams.Record) error { return p.ctx.Forward(r) }
func (p *ticker) Close() error                   { return nil }

// tickerDriver runs a source and a ticker, and returns the driver and the
// punctuations fired so far.
func tickerDriver(t *testing.T, schedules ...tick) (*streams.TestDriver, *[]string) {
	fired := &[]string{}
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "in", Topics: []string{"events"}, Key: str, Value: str}).
		AddProcessor("ticker", func() streams.Processor { return &ticker{schedules: schedules, fired: fired} }, "in")
	return driver(t, topo, topo.Err()), fired
}

func pipeAt(t *testing.T, d *streams.TestDriver, ts time.Time) {
	t.Helper()
	require.NoError(t, streams.InputTopic(d, "events", str, str).Pipe("k", "v", ts))
}

// TestStreamTimePunctuationFiresOncePerAdvanceAlignedToItsInterval: a
// stream-time punctuation follows the largest timestamp processed. It is
// aligned to multiples of its interval, so the first record makes it due
// at once; a record that moves stream time past one or more due times
// fires it once, with the new stream time, and it is next due at the first
// multiple of its interval after that. Stream time never goes back: a late
// record fires nothing.
func TestStreamTimePunctuationFiresOncePerAdvanceAlignedToItsInterval(t *testing.T) {
	d, fired := tickerDriver(t, tick{name: "p", interval: 10 * time.Second, typ: streams.StreamTime})
	pipeAt(t, d, at(0))
	require.Equal(t, []string{"p@0s"}, *fired, "the first record makes a stream-time punctuation due: it is aligned to the epoch")
	pipeAt(t, d, at(3*time.Second))
	require.Equal(t, []string{"p@0s"}, *fired, "3 s of stream time is less than the 10 s interval")
	pipeAt(t, d, at(10*time.Second))
	require.Equal(t, []string{"p@0s", "p@10s"}, *fired, "stream time reached the next multiple of 10 s: due at exactly that time")
	pipeAt(t, d, at(45*time.Second))
	require.Equal(t, []string{"p@0s", "p@10s", "p@45s"}, *fired, "stream time jumped over 20 s, 30 s and 40 s: the punctuation fires once, with the new stream time")
	pipeAt(t, d, at(20*time.Second))
	require.Equal(t, []string{"p@0s", "p@10s", "p@45s"}, *fired, "a late record does not move stream time back")
	require.Equal(t, at(45*time.Second), d.StreamTime(0))
	pipeAt(t, d, at(49*time.Second))
	require.Len(t, *fired, 3, "after firing at 45 s the punctuation is due at 50 s, the next multiple of its interval, not at 55 s")
	pipeAt(t, d, at(50*time.Second))
	require.Equal(t, []string{"p@0s", "p@10s", "p@45s", "p@50s"}, *fired)
}

// TestWallClockPunctuationFollowsTheClockNotTheRecords: a wall-clock
// punctuation is first due one interval after it was scheduled, fires when
// the clock says, records or not, and fires once however far the clock
// jumped (a long pause of the application), then at the next multiple of
// its interval counted from where it started.
func TestWallClockPunctuationFollowsTheClockNotTheRecords(t *testing.T) {
	d, fired := tickerDriver(t, tick{name: "w", interval: time.Minute, typ: streams.WallClockTime})
	pipeAt(t, d, at(time.Hour))
	require.Empty(t, *fired, "records move stream time, not the wall clock")
	require.NoError(t, d.AdvanceWallClockTime(59*time.Second))
	require.Empty(t, *fired)
	require.NoError(t, d.AdvanceWallClockTime(time.Second))
	require.Equal(t, []string{"w@1m0s"}, *fired, "due one interval after it was scheduled")
	require.NoError(t, d.AdvanceWallClockTime(150*time.Second))
	require.Equal(t, []string{"w@1m0s", "w@3m30s"}, *fired, "the clock jumped 2.5 intervals: it fires once, with the clock's time")
	require.NoError(t, d.AdvanceWallClockTime(29*time.Second))
	require.Len(t, *fired, 2, "next due at 4m, the next multiple of the interval, not at 4m30s")
	require.NoError(t, d.AdvanceWallClockTime(time.Second))
	require.Equal(t, []string{"w@1m0s", "w@3m30s", "w@4m0s"}, *fired)
}

// TestStreamAndWallClockPunctuationsKeepToTheirOwnClock: a clock moving
// fires only the punctuations that follow it.
func TestStreamAndWallClockPunctuationsKeepToTheirOwnClock(t *testing.T) {
	d, fired := tickerDriver(t,
		tick{name: "stream", interval: time.Minute, typ: streams.StreamTime},
		tick{name: "wall", interval: time.Minute, typ: streams.WallClockTime})
	pipeAt(t, d, at(0))
	require.Equal(t, []string{"stream@0s"}, *fired)
	require.NoError(t, d.AdvanceWallClockTime(time.Minute))
	require.Equal(t, []string{"stream@0s", "wall@1m0s"}, *fired, "the wall clock fired only the wall-clock punctuation")
	pipeAt(t, d, at(time.Minute))
	require.Equal(t, []string{"stream@0s", "wall@1m0s", "stream@1m0s"}, *fired)
}

// TestDuePunctuationsFireEarliestFirst: when one advance makes several
// punctuations due, they fire in the order of the times they were due at.
func TestDuePunctuationsFireEarliestFirst(t *testing.T) {
	d, fired := tickerDriver(t,
		tick{name: "seven", interval: 7 * time.Second, typ: streams.WallClockTime},
		tick{name: "five", interval: 5 * time.Second, typ: streams.WallClockTime},
		tick{name: "six", interval: 6 * time.Second, typ: streams.WallClockTime})
	require.NoError(t, d.AdvanceWallClockTime(8*time.Second))
	require.Equal(t, []string{"five@8s", "six@8s", "seven@8s"}, *fired, "due at 5 s, 6 s and 7 s: fired in that order")
}

// TestACancelledPunctuationFiresNoMore: Cancel, even from inside the
// punctuation, stops it; the others go on. A punctuation cancelled by
// another that fired before it in the same advance does not fire, though
// it was due.
func TestACancelledPunctuationFiresNoMore(t *testing.T) {
	d, fired := tickerDriver(t,
		tick{name: "once", interval: time.Second, typ: streams.WallClockTime, cancelAfter: 1},
		tick{name: "always", interval: time.Second, typ: streams.WallClockTime})
	for range 3 {
		require.NoError(t, d.AdvanceWallClockTime(time.Second))
	}
	require.Equal(t, []string{"once@1s", "always@1s", "always@2s", "always@3s"}, *fired)

	d, fired = tickerDriver(t,
		tick{name: "killer", interval: time.Second, typ: streams.WallClockTime, cancels: "victim"},
		tick{name: "victim", interval: 2 * time.Second, typ: streams.WallClockTime})
	require.NoError(t, d.AdvanceWallClockTime(5*time.Second))
	require.Equal(t, []string{"killer@5s"}, *fired, "killer was due first (1 s) and cancelled victim (due at 2 s) before it fired")
}

// TestAPunctuationsErrorStopsTheTask: a punctuator's error is the task's:
// the driver returns it, naming the processor.
func TestAPunctuationsErrorStopsTheTask(t *testing.T) {
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "in", Topics: []string{"events"}, Key: str, Value: str}).
		AddProcessor("failing", streams.ProcessorFunc(func(ctx *streams.ProcessorContext, r streams.Record) error {
			_, err := ctx.Schedule(time.Second, streams.StreamTime, func(time.Time) error { return errBoom })
			return err
		}).Supplier(), "in")
	d := driver(t, topo, topo.Err())
	err := streams.InputTopic(d, "events", str, str).Pipe("k", "v", at(0))
	require.ErrorIs(t, err, errBoom)
	require.ErrorContains(t, err, "failing")
}

// TestAPunctuationIsNotARecord: inside a punctuation there is no record
// being processed — RecordMetadata says so — and what the punctuation
// writes to a store carries the punctuation's time to the changelog, not
// the last record's.
func TestAPunctuationIsNotARecord(t *testing.T) {
	var inside []bool
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "in", Topics: []string{"events"}, Key: str, Value: str}).
		AddProcessor("marker", func() streams.Processor {
			return &markerProcessor{seen: &inside}
		}, "in").
		AddStateStore(streams.StoreSpec{Name: "marks", InMemory: true}, "marker")
	d := driver(t, topo, topo.Err())
	pipeAt(t, d, at(5*time.Second))
	require.NoError(t, d.AdvanceWallClockTime(time.Minute))
	require.Equal(t, []bool{true, false}, inside, "a record has metadata; the wall-clock punctuation has none")
	log, err := streams.OutputTopic(d, streams.ChangelogTopic("app", "marks"), str, str).ReadRecords()
	require.NoError(t, err)
	require.Len(t, log, 2)
	require.Equal(t, at(5*time.Second), log[0].Timestamp, "the record's write carries the record's time")
	require.Equal(t, at(time.Minute), log[1].Timestamp, "the punctuation's write carries the punctuation's time")
}

// markerProcessor writes a mark to its store for each record and each
// wall-clock punctuation, noting whether RecordMetadata had a record.
type markerProcessor struct {
	seen  *[]bool
	ctx   *streams.ProcessorContext
	marks streams.TypedStore[string, string]
}

func (p *markerProcessor) Init(ctx *streams.ProcessorContext) error {
	s, err := ctx.Store("marks")
	if err != nil {
		return err
	}
	p.ctx, p.marks = ctx, streams.Typed(s, str, str)
	_, err = ctx.Schedule(time.Minute, streams.WallClockTime, func(now time.Time) error {
		_, ok := ctx.RecordMetadata()
		*p.seen = append(*p.seen, ok)
		return p.marks.Put("punctuation", now.String())
	})
	return err
}

func (p *markerProcessor) Process(r streams.Record) error {
	_, ok := p.ctx.RecordMetadata()
	*p.seen = append(*p.seen, ok)
	return p.marks.Put("record", "seen")
}

func (p *markerProcessor) Close() error { return nil }

// TestAPunctuationScheduledByAPunctuationFiresWhenDue: a punctuator may
// schedule another; a stream-time one is due at once (it is aligned to the
// epoch), and fires in the same advance, after the one that made it.
func TestAPunctuationScheduledByAPunctuationFiresWhenDue(t *testing.T) {
	var fired []string
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "in", Topics: []string{"events"}, Key: str, Value: str}).
		AddProcessor("nested", streams.ProcessorFunc(func(ctx *streams.ProcessorContext, r streams.Record) error {
			if len(fired) > 0 {
				return nil
			}
			_, err := ctx.Schedule(time.Hour, streams.StreamTime, func(now time.Time) error {
				fired = append(fired, "outer@"+now.Sub(base).String())
				if len(fired) > 1 {
					return nil
				}
				_, err := ctx.Schedule(time.Hour, streams.StreamTime, func(now time.Time) error {
					fired = append(fired, "inner@"+now.Sub(base).String())
					return nil
				})
				return err
			})
			return err
		}).Supplier(), "in")
	d := driver(t, topo, topo.Err())
	pipeAt(t, d, at(0))
	require.Equal(t, []string{"outer@0s", "inner@0s"}, fired)
}
