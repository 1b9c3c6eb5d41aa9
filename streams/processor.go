package streams

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Header is a record header.
type Header = kmsg.Header

// Record is what flows from node to node of a topology: a key and a value
// (already deserialized by the source, nil for none or for a tombstone),
// the record's timestamp, and its headers.
type Record struct {
	Key       any
	Value     any
	Timestamp time.Time
	Headers   []Header
}

// Processor is a node of a topology that does work on each record, as
// Kafka's org.apache.kafka.streams.processor.api.Processor: it may forward
// any number of records (none, to drop it; several, to split it) to its
// children through the context Init gave it, read and write the state
// stores connected to it, and schedule punctuations. Each task has its own
// instance of every processor of its sub-topology, made by the supplier
// given to AddProcessor, and calls it from one goroutine only.
type Processor interface {
	// Init is called once, before the first record, with the context
	// through which the processor forwards, finds its stores and
	// schedules punctuations.
	Init(ctx *ProcessorContext) error
	// Process handles one record. An error stops the task (and the
	// application), as an exception thrown from process does in Kafka.
	Process(r Record) error
	// Close is called once when the task closes: its partitions moved
	// away, or the application stops.
	Close() error
}

// ProcessorSupplier makes a new processor instance, one per task.
type ProcessorSupplier func() Processor

// ProcessorFunc is a processor with nothing to set up: a function of the
// context and the record.
type ProcessorFunc func(ctx *ProcessorContext, r Record) error

// Supplier turns f into a ProcessorSupplier.
func (f ProcessorFunc) Supplier() ProcessorSupplier {
	return func() Processor { return &funcProcessor{f: f} }
}

type funcProcessor struct {
	f   ProcessorFunc
	ctx *ProcessorContext
}

func (p *funcProcessor) Init(ctx *ProcessorContext) error { p.ctx = ctx; return nil }
func (p *funcProcessor) Process(r Record) error           { return p.f(p.ctx, r) }
func (p *funcProcessor) Close() error                     { return nil }

// PunctuationType says which clock a punctuation follows.
type PunctuationType int

const (
	// StreamTime punctuations follow the task's stream time, the largest
	// record timestamp it has processed: they fire only as records arrive,
	// and replaying old data fires them as it did the first time.
	StreamTime PunctuationType = iota
	// WallClockTime punctuations follow the machine's clock, records or
	// not.
	WallClockTime
)

func (t PunctuationType) String() string {
	if t == StreamTime {
		return "STREAM_TIME"
	}
	return "WALL_CLOCK_TIME"
}

// Punctuator is called when a punctuation is due, with the time of the
// clock it follows.
type Punctuator func(now time.Time) error

// Cancellable stops a scheduled punctuation.
type Cancellable interface{ Cancel() }

// RecordMetadata says where the record being processed came from.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    int64
}

// ProcessorContext is a processor's view of its task: where its output
// goes, its state stores, its clocks. Each processor instance of a task
// has its own.
type ProcessorContext struct {
	task *task
	node *taskNode
}

// Forward sends r to every child of this processor, depth first: each
// child has processed it (and forwarded what it makes of it) when Forward
// returns.
func (c *ProcessorContext) Forward(r Record) error {
	for _, child := range c.node.children {
		if err := c.task.process(child, r); err != nil {
			return err
		}
	}
	return nil
}

// ForwardTo sends r to one child, by name (as Kafka's To.child).
func (c *ProcessorContext) ForwardTo(child string, r Record) error {
	for _, n := range c.node.children {
		if n.name == child {
			return c.task.process(n, r)
		}
	}
	return errorf("processor %s has no child %q", c.node.name, child)
}

// Store returns the state store called name, which must have been
// connected to this processor (AddStateStore, ConnectProcessorAndStateStores).
func (c *ProcessorContext) Store(name string) (KeyValueStore, error) {
	if !c.node.spec.storeNames[name] {
		return nil, errorf("processor %s is not connected to state store %q", c.node.name, name)
	}
	s, ok := c.task.stores[name]
	if !ok {
		return nil, errorf("no state store %q in task %s", name, c.task.id)
	}
	return s, nil
}

// Schedule calls fn every interval of the clock typ says, until cancelled
// or the task closes. A stream-time punctuation is aligned to multiples of
// interval and fires at most once per record, however far stream time
// jumped; a wall-clock one first fires one interval from now.
func (c *ProcessorContext) Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) (Cancellable, error) {
	if interval < time.Millisecond {
		return nil, errorf("punctuation interval %v is below the 1 ms minimum", interval)
	}
	return c.task.schedule(c.node, interval, typ, fn), nil
}

// TaskID is the task this processor instance belongs to.
func (c *ProcessorContext) TaskID() TaskID { return c.task.id }

// ApplicationID is application.id.
func (c *ProcessorContext) ApplicationID() string { return c.task.appID }

// RecordMetadata says where the record being processed was read, and
// false in a punctuation, where there is none.
func (c *ProcessorContext) RecordMetadata() (RecordMetadata, bool) {
	return c.task.current, c.task.processing
}

// StreamTime is the task's stream time: the largest timestamp of the
// records it has processed, zero before the first.
func (c *ProcessorContext) StreamTime() time.Time { return c.task.streamTime }

// WallClock is the time now, as the task's clock says (the test driver
// moves it by hand).
func (c *ProcessorContext) WallClock() time.Time { return c.task.clock() }

// Commit asks for a commit after this record, without waiting for
// commit.interval.ms.
func (c *ProcessorContext) Commit() { c.task.commitRequested = true }
