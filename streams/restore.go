package streams

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"klab.dev/klab/consumer"
)

//klab:lesson 13 begin restoreRecords

// restoreRecords applies changelog records to store, the store itself and
// not its logging wrapper (restoring must not write the changelog again):
// a record with a value puts it, a tombstone (nil value) deletes its key.
// position is the offset the restore has reached, end the changelog's end
// offset when the restore began: only records at offsets from position up
// to end are applied. It returns the new position (the offset after the
// last record applied) and whether the restore is done, position having
// reached end.
//
// It stops by offset, never by counting records: a compacted changelog has
// gaps where older values of a key were cleaned away, so end - position is
// an upper bound of what is left, not a count.
func restoreRecords(store KeyValueStore, records []consumer.Record, position, end int64) (next int64, done bool, err error) {
	for _, r := range records {
		if r.Offset < position {
			continue // already applied: a batch can begin before the position
		}
		if r.Offset >= end {
			// Written after the restore began (by a zombie owner still
			// writing): not the restore's business. Every offset before
			// end has been seen: those with no record were compacted away.
			return end, true, nil
		}
		if r.Value == nil {
			err = store.Delete(r.Key)
		} else {
			err = store.Put(r.Key, r.Value)
		}
		if err != nil {
			return position, false, errorf("restoring %s at offset %d: %w", store.Name(), r.Offset, err)
		}
		position = r.Offset + 1
	}
	return position, position >= end, nil
}

//klab:lesson 13 stub
// func restoreRecords(store KeyValueStore, records []consumer.Record, position, end int64) (next int64, done bool, err error) {
// 	return position, false, lessons.Todo("13", "restoreRecords")
// }
//klab:lesson 13 end

// restorer replays changelogs into stores for one stream thread. It has a
// consumer of its own that belongs to no group (Assign and Seek), as
// Kafka's restore consumer, and one more that only finds end offsets.
type restorer struct {
	cfg      Config
	clientID string
	replay   *consumer.Consumer // auto.offset.reset=earliest: from the start
	ends     *consumer.Consumer // auto.offset.reset=latest: finds end offsets
}

// consumers makes the restorer's consumers the first time they are needed.
func (r *restorer) consumers() error {
	if r.replay != nil {
		return nil
	}
	newConsumer := func(reset, suffix string) (*consumer.Consumer, error) {
		cc := consumer.DefaultConfig()
		cc.BootstrapServers = r.cfg.BootstrapServers
		cc.ClientID = r.clientID + suffix
		cc.AutoOffsetReset = reset
		cc.EnableAutoCommit = false
		cc.MaxPollRecords = 1000
		return consumer.New(cc)
	}
	var err error
	if r.replay, err = newConsumer("earliest", "-restore-consumer"); err != nil {
		return err
	}
	r.ends, err = newConsumer("latest", "-restore-ends")
	return err
}

// close closes the consumers.
func (r *restorer) close() {
	if r.replay != nil {
		r.replay.Close()
		r.ends.Close()
	}
}

// endOffset returns the end offset of tp: the offset its next record will
// get. A leader out of reach is looked for again for up to
// task.timeout.ms (the consumer's own default would give up after 60 s).
func (r *restorer) endOffset(ctx context.Context, tp consumer.TopicPartition) (int64, error) {
	if err := r.consumers(); err != nil {
		return 0, err
	}
	r.ends.Assign(tp)
	if err := r.ends.Seek(tp, -1); err != nil { // forget the last answer
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.TaskTimeout)
	defer cancel()
	end, err := r.ends.Position(ctx, tp)
	if err != nil {
		return 0, r.timedOut(ctx, err)
	}
	return end, nil
}

// timedOut says, of an error that ended a wait of up to task.timeout.ms,
// that task.timeout.ms passed, if it did.
func (r *restorer) timedOut(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errorf("no answer within task.timeout.ms (%v): %w", r.cfg.TaskTimeout, err)
	}
	return err
}

// restoreProgress is told, about once a second and when a restore ends, how
// many changelog offsets of how many it has gone through.
type restoreProgress func(restored, total int64)

// replayChangelog applies partition tp of a changelog to store, from
// offset from (-1: the start of the log) up to end, calling progress on
// the way. It returns how many offsets it went through. A leader out of
// reach (its broker down) is waited for, up to task.timeout.ms without
// progress, as Kafka's task.timeout.ms bounds a task that cannot get on.
func (r *restorer) replayChangelog(ctx context.Context, store KeyValueStore, tp consumer.TopicPartition, from, end int64, progress restoreProgress) (int64, error) {
	if err := r.consumers(); err != nil {
		return 0, err
	}
	r.replay.Assign(tp)
	if err := r.replay.Seek(tp, from); err != nil {
		return 0, err
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.TaskTimeout)
	start, err := r.replay.Position(pctx, tp)
	if err != nil {
		err = r.timedOut(pctx, err)
	}
	cancel()
	if err != nil {
		return 0, errorf("restoring %s from %s: %w", store.Name(), tp, err)
	}
	position, total := start, max(end-start, 0)
	progress(0, total)
	lastReport := time.Now()
	lastProgress := time.Now() // when the restore last got on
	for done := position >= end; !done; {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		records, err := r.replay.Poll(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return position - start, ctx.Err()
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			return position - start, errorf("restoring %s from %s: %w", store.Name(), tp, err)
		}
		before := position
		if position, done, err = restoreRecords(store, records, position, end); err != nil {
			return position - start, err
		}
		if position > before || done {
			lastProgress = time.Now()
		} else if time.Since(lastProgress) > r.cfg.TaskTimeout {
			return position - start, errorf("restoring %s from %s: no progress at offset %d of %d within task.timeout.ms (%v): is its leader down?",
				store.Name(), tp, position, end, r.cfg.TaskTimeout)
		}
		if time.Since(lastReport) >= time.Second {
			progress(position-start, total)
			lastReport = time.Now()
		}
	}
	progress(total, total)
	return total, nil
}

// changelogOf is the changelog partition of a task's logged store.
func changelogOf(appID string, spec StoreSpec, id TaskID) changelogPartition {
	return changelogPartition{Topic: ChangelogTopic(appID, spec.Name), Partition: id.Partition}
}

// openRestored opens the store spec describes for task id, and restores it
// from its changelog before the task's processors see it: a persistent
// store from its checkpoint (only what the changelog got since the last
// commit), an in-memory one from the start of the changelog. It returns
// the store and the changelog's next offset, which the store now matches
// (-1 for a store without a changelog).
func (th *streamThread) openRestored(ctx context.Context, spec StoreSpec, id TaskID) (KeyValueStore, int64, error) {
	taskDir := filepath.Join(th.app.cfg.StateDir, th.app.cfg.ApplicationID, id.String())
	storeDir := filepath.Join(taskDir, spec.Name)
	open := func() (KeyValueStore, error) {
		if spec.InMemory {
			return NewMemoryStore(spec.Name), nil
		}
		if err := os.MkdirAll(taskDir, 0o755); err != nil {
			return nil, err
		}
		return OpenPersistentStore(spec.Name, storeDir)
	}
	if spec.LoggingDisabled {
		th.setStore(id, StoreMetadata{Name: spec.Name, State: StoreUnlogged})
		s, err := open()
		return s, -1, err
	}
	cp := changelogOf(th.app.cfg.ApplicationID, spec, id)
	tp := consumer.TopicPartition{Topic: cp.Topic, Partition: cp.Partition}
	end, err := th.restorer.endOffset(ctx, tp)
	if err != nil {
		return nil, 0, errorf("task %s: end offset of %s: %w", id, tp, err)
	}
	from := int64(-1)
	logf := th.app.cfg.Logger
	if !spec.InMemory {
		start, wipe, err := restoreFrom(taskDir, cp, end)
		if err != nil {
			return nil, 0, err
		}
		if wipe {
			// What the store holds, if anything, is of no known offset
			// (or of a changelog deleted and made again): rebuild it whole.
			if err := os.RemoveAll(storeDir); err != nil {
				return nil, 0, err
			}
		} else {
			from = start
		}
	}
	store, err := open()
	if err != nil {
		return nil, 0, err
	}
	began := time.Now()
	progress := func(restored, total int64) {
		state := StoreRestoring
		if restored >= total {
			state = StoreRunning
		}
		th.setStore(id, StoreMetadata{Name: spec.Name, State: state, Restored: restored, Total: total})
		if restored < total && time.Since(began) >= time.Second {
			logf("streams %s: restoring task %s store %s: %d of %d records", th.app.cfg.ApplicationID, id, spec.Name, restored, total)
		}
		th.publish()
	}
	restored, err := th.restorer.replayChangelog(ctx, store, tp, from, end, progress)
	if err != nil {
		store.Close()
		return nil, 0, err
	}
	how := "from the start of the changelog"
	if from >= 0 {
		how = "from the checkpoint at offset " + strconv.FormatInt(from, 10)
	}
	logf("streams %s: task %s store %s: restored %d records %s in %v",
		th.app.cfg.ApplicationID, id, spec.Name, restored, how, time.Since(began).Round(time.Millisecond))
	return store, end, nil
}
