package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"klab.dev/klab/cmd/klab/internal/perf"
)

// stderrIsTerminal says whether progress can be redrawn in place.
var stderrIsTerminal = term.IsTerminal(int(os.Stderr.Fd()))

// progress shows how far one step of a perf run has got, on standard error.
// On a terminal it is a bar that github.com/schollz/progressbar redraws in
// place. That library redraws with a carriage return whatever it writes to,
// so on a pipe or a file, where every redraw would stay as one more copy of
// the line, there is no bar: finish prints one plain line instead.
type progress struct {
	label string
	unit  string // "bytes" or "records"
	total int64
	start time.Time
	done  int64
	shown time.Time                // when the bar was last given done
	bar   *progressbar.ProgressBar // nil if standard error is not a terminal
}

// newProgress starts the progress of a step that began at start and does
// total bytes or records (unit).
func newProgress(label, unit string, total int64, start time.Time) *progress {
	p := &progress{label: label, unit: unit, total: total, start: start}
	if !stderrIsTerminal || total <= 0 {
		return p
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(fmt.Sprintf("  %-28s", label)),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(os.Stderr) }),
	}
	if unit == "bytes" {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit))
	}
	p.bar = progressbar.NewOptions64(total, opts...)
	p.bar.StartWithoutRender() // its clock, for the rate it shows, starts now
	p.shown = time.Now()
	return p
}

// update records that done bytes or records of the step are done. It is
// called in the measured loop, so it passes them to the bar at most ten
// times a second.
func (p *progress) update(done int64) {
	p.done = done
	if p.bar == nil {
		return
	}
	if now := time.Now(); now.Sub(p.shown) >= 100*time.Millisecond || done >= p.total {
		p.shown = now
		p.bar.Set64(min(done, p.total)) // more than the total would stop the bar short of its end
	}
}

// finish ends the step's line: the bar, completed or where it stopped, or
// on a pipe one plain line with the step's rate.
func (p *progress) finish() {
	if p.bar != nil {
		if !p.bar.IsFinished() {
			p.bar.Exit() // stopped short: leave the bar where it got to
		}
		return
	}
	took := time.Since(p.start)
	if p.unit == "bytes" {
		fmt.Fprintf(os.Stderr, "  %-28s %6d / %d MiB  %8.1f MB/s\n", p.label, p.done>>20, p.total>>20, mbps(p.done, took))
		return
	}
	fmt.Fprintf(os.Stderr, "  %-28s %9d / %d %s  %10.0f %s/s\n", p.label, p.done, p.total, p.unit, float64(p.done)/took.Seconds(), p.unit)
}

// recordProgress shows the steps of a run on a cluster, as package perf
// reports them: when a step starts, about once a second, and a last time,
// Final, when it stops. The steps run one after the other.
type recordProgress struct {
	mu  sync.Mutex
	cur *progress
}

func (r *recordProgress) report(label string, p perf.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil && r.cur.label != label {
		r.cur.finish()
		r.cur = nil
	}
	if r.cur == nil {
		r.cur = newProgress(label, "records", p.Total, time.Now().Add(-p.Elapsed))
	}
	r.cur.update(p.Done)
	if p.Final {
		r.cur.finish()
		r.cur = nil
	}
}

// labelled is report for a run of one step, named label.
func (r *recordProgress) labelled(label string) func(perf.Progress) {
	return func(p perf.Progress) { r.report(label, p) }
}
