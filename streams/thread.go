package streams

import (
	"cmp"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
)

// commitTimeout bounds a commit's offset commit. A commit at shutdown runs
// after the thread's context has ended, so commits have contexts of their
// own. The producer's flush has its own bound, flushTimeout.
const commitTimeout = 30 * time.Second

// streamThread is one of num.stream.threads: a member of the
// application's group with its own consumer and producer, running the
// tasks the group assigns it, one record at a time, on one goroutine. The
// rebalance callbacks run in that goroutine too (from Poll), so the
// thread's fields need no lock, except those the producer's callbacks
// write.
type streamThread struct {
	app      *KafkaStreams
	index    int
	name     string
	consumer *consumer.Consumer
	producer *producer.Producer
	restorer *restorer
	purger   *purger
	// flushTimeout bounds a commit's producer flush: the producer's
	// delivery.timeout.ms and a margin. Each record is answered within
	// delivery.timeout.ms (delivered, or failed), so the flush ends by
	// then; as in Kafka, it is not cut shorter, so that a broker that
	// is down for a while (its partitions' records wait, and are
	// retried) does not stop the application.
	flushTimeout time.Duration

	tasks       map[TaskID]*task
	byPartition map[consumer.TopicPartition]*task
	// pending are partitions assigned whose tasks are not made yet: the
	// loop makes them (and restores their stores) after Poll returns.
	pending []consumer.TopicPartition
	// assigned says a rebalance ended (onAssigned ran, possibly with no
	// partitions): the loop makes the pending tasks.
	assigned bool
	// processed is, for each input partition, the offset after the last
	// record processed since the last commit: what the next commit commits.
	processed   map[consumer.TopicPartition]int64
	lastCommit  time.Time
	callbackErr error // a fatal error in a rebalance callback, for the loop
	failed      bool  // the thread is stopping on an error: commit nothing more
	rebalancing bool  // between a revocation (or the start) and the tasks being ready
	stopping    bool  // shutdown began: revoking is not rebalancing
	meta        map[TaskID]*TaskMetadata
	unlock      map[TaskID]func() // releases each task's directory (lockTaskDir)

	mu sync.Mutex // guards what the producer's callbacks write:
	// written is, for each changelog partition, the offset after the last
	// record this thread wrote to it (or restored from it): where a
	// restore from this task's checkpoint would start.
	written map[changelogPartition]int64
	sendErr error // the first failed send
}

// newStreamThread makes thread number index (from 1) of the application,
// with its clients.
func newStreamThread(app *KafkaStreams, index int) (*streamThread, error) {
	th := &streamThread{
		app:         app,
		index:       index,
		name:        app.cfg.ClientID + "-StreamThread-" + strconv.Itoa(index),
		tasks:       map[TaskID]*task{},
		byPartition: map[consumer.TopicPartition]*task{},
		processed:   map[consumer.TopicPartition]int64{},
		meta:        map[TaskID]*TaskMetadata{},
		unlock:      map[TaskID]func(){},
		written:     map[changelogPartition]int64{},
		rebalancing: true,
	}
	cc, err := app.consumerConfig(th.name + "-consumer")
	if err != nil {
		return nil, err
	}
	cc.OnPartitionsRevoked = th.onRevoked
	cc.OnPartitionsLost = th.onLost
	cc.OnPartitionsAssigned = th.onAssigned
	if th.consumer, err = consumer.New(cc); err != nil {
		return nil, errorf("%s: %w", th.name, err)
	}
	pc, err := app.producerConfig(th.name + "-producer")
	if err != nil {
		th.consumer.Close()
		return nil, err
	}
	th.flushTimeout = pc.DeliveryTimeout + commitTimeout
	if th.producer, err = producer.New(pc); err != nil {
		th.consumer.Close()
		return nil, errorf("%s: %w", th.name, err)
	}
	th.restorer = &restorer{cfg: app.cfg, clientID: th.name}
	th.purger = &purger{app: app, clientID: th.name + "-admin"}
	return th, nil
}

// run is the thread's loop, until ctx ends or an error stops it: poll,
// make the tasks of new partitions (restoring their stores), process each
// record in its task, fire wall-clock punctuations, and commit when
// commit.interval.ms has passed or a processor asked. It returns the error
// that stopped it, nil after a clean stop.
func (th *streamThread) run(ctx context.Context) (err error) {
	defer func() { th.shutdown(err) }()
	if err := th.consumer.Subscribe(th.app.topo.SourceTopics(th.app.cfg.ApplicationID)...); err != nil {
		return err
	}
	th.lastCommit = time.Now()
	th.publish()
	for ctx.Err() == nil {
		if err := th.step(ctx); err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil // stopped while restoring or committing
			}
			return err
		}
	}
	return nil
}

// step is one round of the loop.
func (th *streamThread) step(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, th.app.cfg.PollInterval)
	records, err := th.consumer.Poll(pctx)
	cancel()
	switch {
	case ctx.Err() != nil:
		return nil
	case th.callbackErr != nil:
		return th.callbackErr
	case err != nil && !errors.Is(err, context.DeadlineExceeded):
		return errorf("%s: poll: %w", th.name, err)
	}
	if err := th.makePendingTasks(ctx); err != nil {
		return err
	}
	for _, r := range records {
		tp := consumer.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		t, ok := th.byPartition[tp]
		if !ok {
			continue // revoked in this Poll, after it was fetched
		}
		meta := RecordMetadata{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
		if err := t.processInput(meta, r.Key, r.Value, r.Timestamp, r.Headers); err != nil {
			// Where, as Kafka's "Exception caught in process. taskId=...".
			return errorf("task %s, processing %s at offset %d: %w", t.id, tp, r.Offset, err)
		}
		th.processed[tp] = r.Offset + 1
	}
	now := time.Now()
	requested := false
	for _, id := range th.taskIDs() {
		t := th.tasks[id]
		if err := t.punctuate(WallClockTime, now); err != nil {
			return err
		}
		requested = requested || t.commitRequested
	}
	if requested || now.Sub(th.lastCommit) >= th.app.cfg.CommitInterval {
		return th.commit()
	}
	return nil
}

// taskIDs are the thread's tasks, in order.
func (th *streamThread) taskIDs() []TaskID {
	ids := make([]TaskID, 0, len(th.tasks))
	for id := range th.tasks {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareTaskIDs)
	return ids
}

func compareTaskIDs(a, b TaskID) int {
	return cmp.Or(cmp.Compare(a.Subtopology, b.Subtopology), cmp.Compare(a.Partition, b.Partition))
}

// send is the tasks' collector: records go to the producer, and the
// offsets of changelog records come back through its callback, for the
// checkpoints.
func (th *streamThread) send(topic string, partition int32, key, value []byte, ts time.Time, headers []Header) error {
	th.mu.Lock()
	err := th.sendErr
	th.mu.Unlock()
	if err != nil {
		return err // fail fast: the output after a lost record is of no use
	}
	r := &producer.Record{Topic: topic, Key: key, Value: value, Timestamp: ts, Headers: headers}
	if partition >= 0 {
		r.Partition = &partition
	}
	_, changelog := th.app.changelogs[topic]
	th.producer.SendAsync(r, func(md producer.RecordMetadata, err error) {
		th.mu.Lock()
		defer th.mu.Unlock()
		switch {
		case err != nil:
			if th.sendErr == nil {
				th.sendErr = errorf("%s: sending to %s: %w", th.name, topic, err)
			}
		case changelog:
			cp := changelogPartition{md.Topic, md.Partition}
			th.written[cp] = max(th.written[cp], md.Offset+1)
		}
	})
	return nil
}

// commit makes what the tasks did durable, in the order at-least-once
// needs: the output and changelog records are acknowledged (producer
// flush), the stores are flushed to disk, the checkpoints say up to where
// the stores hold the changelogs, and only then are the input offsets
// committed. A crash anywhere in between processes records again; none is
// lost.
func (th *streamThread) commit() error {
	fctx, cancel := context.WithTimeout(context.Background(), th.flushTimeout)
	err := th.producer.Flush(fctx)
	cancel()
	if err != nil {
		return errorf("%s: commit: %w", th.name, err)
	}
	th.mu.Lock()
	err = th.sendErr
	th.mu.Unlock()
	if err != nil {
		return err
	}
	for _, id := range th.taskIDs() {
		t := th.tasks[id]
		th.reportDropped(t)
		if err := t.flush(); err != nil {
			return err
		}
		if err := th.checkpoint(t); err != nil {
			return errorf("task %s: writing its checkpoint: %w", id, err)
		}
		t.commitRequested = false
	}
	if len(th.processed) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		err := th.consumer.CommitOffsets(ctx, th.processed)
		cancel()
		if err != nil {
			// Not fatal, as in Kafka: the group moved on (a rebalance), and
			// whoever gets these partitions processes the records again.
			th.app.cfg.Logger("streams %s: %s: committing offsets failed, records since the last commit will be processed again: %v",
				th.app.cfg.ApplicationID, th.name, err)
		} else {
			th.purger.committed(th.processed)
		}
		th.processed = map[consumer.TopicPartition]int64{}
	}
	th.purger.maybePurge()
	th.lastCommit = time.Now()
	th.publish()
	return nil
}

// reportDropped logs, once per commit and not once per record, how many
// records task t dropped since the last report (their timestamp was
// before 1970), and adds them to the task's count in the status file.
func (th *streamThread) reportDropped(t *task) {
	if t.dropped == 0 {
		return
	}
	n := t.dropped
	t.dropped = 0
	if m, ok := th.meta[t.id]; ok {
		m.Dropped += int64(n)
	}
	th.app.cfg.Logger("streams %s: task %s: dropped %d records with a timestamp before 1970 (an invalid event time) since the last commit",
		th.app.cfg.ApplicationID, t.id, n)
}

// checkpoint writes the checkpoint of t's persistent logged stores: for
// each, the offset after the last changelog record it holds.
func (th *streamThread) checkpoint(t *task) error {
	offsets := map[changelogPartition]int64{}
	th.mu.Lock()
	for _, name := range t.sub.stores {
		spec := *th.app.topo.store(name)
		if spec.InMemory || spec.LoggingDisabled {
			continue
		}
		cp := changelogOf(th.app.cfg.ApplicationID, spec, t.id)
		if o, ok := th.written[cp]; ok {
			offsets[cp] = o
		}
	}
	th.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	return writeCheckpoint(th.taskDir(t.id), offsets)
}

// taskDir is where task id keeps its persistent stores and checkpoint.
func (th *streamThread) taskDir(id TaskID) string {
	return filepath.Join(th.app.cfg.StateDir, th.app.cfg.ApplicationID, id.String())
}

// onRevoked runs in Poll before the consumer gives partitions up in a
// rebalance (all of them: the streams assignor is eager): commit, then
// close the tasks of those partitions, their checkpoints written. Kafka's
// cooperative protocol keeps the tasks that stay; here every rebalance
// closes and reopens them (a persistent store reopens from its checkpoint
// at little cost; an in-memory one is restored again).
func (th *streamThread) onRevoked(tps []consumer.TopicPartition) {
	if !th.stopping { // a stopping thread's consumer leaving: no rebalance
		th.rebalancing = true
	}
	if !th.failed {
		if err := th.commit(); err != nil && th.callbackErr == nil {
			th.callbackErr = err
			th.failed = true
		}
	}
	th.closeTasksOf(tps, !th.failed)
	th.publish()
}

// onLost runs in Poll when the membership ended before the partitions
// could be revoked: others may own them already, so nothing is committed
// and the tasks close without a checkpoint.
func (th *streamThread) onLost(tps []consumer.TopicPartition) {
	if !th.stopping {
		th.rebalancing = true
	}
	for _, tp := range tps {
		delete(th.processed, tp)
	}
	th.closeTasksOf(tps, false)
	th.publish()
}

// onAssigned runs in Poll with the partitions of the new assignment: their
// tasks are made by the loop, once Poll returns.
func (th *streamThread) onAssigned(tps []consumer.TopicPartition) {
	th.pending = append(th.pending, tps...)
	th.assigned, th.rebalancing = true, true
	th.app.cfg.Logger("streams %s: %s: assigned %d partitions", th.app.cfg.ApplicationID, th.name, len(tps))
}

// closeTasksOf closes the tasks that read any of tps. clean says the task
// was committed: its checkpoint is written again as it closes.
func (th *streamThread) closeTasksOf(tps []consumer.TopicPartition, clean bool) {
	th.pending = slices.DeleteFunc(th.pending, func(tp consumer.TopicPartition) bool { return slices.Contains(tps, tp) })
	for _, tp := range tps {
		if t, ok := th.byPartition[tp]; ok {
			th.closeTask(t, clean)
		}
	}
}

// closeTask closes t and forgets it.
func (th *streamThread) closeTask(t *task, clean bool) {
	th.reportDropped(t)
	if clean {
		if err := th.checkpoint(t); err != nil {
			th.app.cfg.Logger("streams %s: task %s: writing its checkpoint: %v", th.app.cfg.ApplicationID, t.id, err)
		}
	}
	if err := t.close(); err != nil {
		th.app.cfg.Logger("streams %s: %v", th.app.cfg.ApplicationID, err)
	}
	for tp, other := range th.byPartition {
		if other == t {
			delete(th.byPartition, tp)
		}
	}
	delete(th.tasks, t.id)
	delete(th.meta, t.id)
	th.unlock[t.id]()
	delete(th.unlock, t.id)
}

// makePendingTasks makes the tasks of the partitions assigned in the last
// Poll: each task's stores are opened and restored from their changelogs
// before its processors are initialized and it sees its first record.
// Poll is not called meanwhile, so a restore longer than
// max.poll.interval.ms makes the thread leave the group (Kafka restores
// between polls, with the task's partitions paused; the course's consumer
// cannot pause).
func (th *streamThread) makePendingTasks(ctx context.Context) error {
	if !th.assigned {
		return nil
	}
	th.assigned = false
	byTask := map[TaskID][]consumer.TopicPartition{}
	for _, tp := range th.pending {
		sub, ok := th.app.topo.subtopologyOf(th.app.cfg.ApplicationID, tp.Topic)
		if !ok {
			return errorf("%s: assigned %s, which the topology does not read", th.name, tp)
		}
		id := TaskID{Subtopology: sub.id, Partition: tp.Partition}
		byTask[id] = append(byTask[id], tp)
	}
	th.pending = nil
	ids := make([]TaskID, 0, len(byTask))
	for id := range byTask {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareTaskIDs)
	subs := th.app.topo.subtopologies()
	for _, id := range ids {
		m := &TaskMetadata{ID: id}
		for _, tp := range byTask[id] {
			m.Partitions = append(m.Partitions, tp.String())
		}
		th.meta[id] = m
		th.publish()
		ends := map[changelogPartition]int64{}
		open := func(spec StoreSpec, id TaskID) (KeyValueStore, error) {
			s, end, err := th.openRestored(ctx, spec, id)
			if err == nil && end >= 0 {
				ends[changelogOf(th.app.cfg.ApplicationID, spec, id)] = end
			}
			return s, err
		}
		unlock, err := lockTaskDir(ctx, th.taskDir(id))
		if err != nil {
			return errorf("task %s: %w", id, err)
		}
		t, err := newTask(th.app.topo, th.app.cfg.ApplicationID, subs[id.Subtopology], id.Partition, th, time.Now, open)
		if err != nil {
			unlock()
			delete(th.meta, id)
			return err
		}
		th.unlock[id] = unlock
		th.mu.Lock()
		for cp, end := range ends {
			th.written[cp] = end
		}
		th.mu.Unlock()
		th.tasks[id] = t
		for _, tp := range byTask[id] {
			th.byPartition[tp] = t
		}
	}
	th.rebalancing = false
	th.publish()
	return nil
}

// setStore records the state of a store of task id, for the status.
func (th *streamThread) setStore(id TaskID, s StoreMetadata) {
	m, ok := th.meta[id]
	if !ok {
		return
	}
	for i := range m.Stores {
		if m.Stores[i].Name == s.Name {
			m.Stores[i] = s
			return
		}
	}
	m.Stores = append(m.Stores, s)
}

// publish hands the application a copy of what the thread runs, for
// Threads, State and the status file.
func (th *streamThread) publish() {
	view := ThreadMetadata{Name: th.name}
	ids := make([]TaskID, 0, len(th.meta))
	for id := range th.meta {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareTaskIDs)
	for _, id := range ids {
		m := *th.meta[id]
		m.Partitions = slices.Clone(m.Partitions)
		m.Stores = slices.Clone(m.Stores)
		view.Tasks = append(view.Tasks, m)
	}
	th.app.threadChanged(th.index, view, th.rebalancing)
}

// shutdown ends the thread: after a clean stop it commits and closes its
// tasks with their checkpoints; after an error it reports the error at
// once (the application goes to state Error, and its other threads stop),
// then closes its tasks without committing. Then its consumer leaves the
// group, so that the others take its tasks at once.
//
// The producer's Close waits for the answers to what was sent, up to
// delivery.timeout.ms, even after an error: klab's producer has no Close
// that drops what it holds (Kafka's close(Duration.ZERO)).
func (th *streamThread) shutdown(err error) {
	th.stopping = true
	if err != nil {
		th.failed = true
		th.app.fail(err)
	} else if err := th.commit(); err != nil {
		th.failed = true
		th.app.fail(err)
	}
	for _, id := range th.taskIDs() {
		th.closeTask(th.tasks[id], !th.failed)
	}
	th.consumer.Close()
	th.producer.Close()
	th.restorer.close()
	th.purger.close()
	th.publish()
}
