package course

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"klab.dev/klab/lessons"
)

// A lesson's mutant catalogue, lessons/NN-slug/mutants.txt, lists
// known-wrong variants of the lesson's regions: the mistakes a student
// plausibly makes, the misconceptions the README corrects, and real Kafka
// bugs the code guards against. `klab course check` applies each to the
// reference code and fails unless one of the lesson's own tests fails on
// it: a test suite that passes wrong code teaches the wrong thing.
//
// The format anchors each edit in a region's text, not at a line number,
// so it survives changes elsewhere in the file; an edit whose text is no
// longer in its region, or is there twice, fails the check (a mutant that
// no longer applies is rewritten, not skipped):
//
//	=== find ignores the index
//	region: (*segment).find
//	kind: mistake
//	why: Scanning from the segment's start finds the same batch, but a
//	  read then costs the whole segment.
//	--- replace
//		if i > 0 {
//	--- with
//		if false {
//
// A "--- replace" block of one line matches a piece of a line; a block of
// several lines matches whole lines. Lines match with their leading white
// space ignored, and the "--- with" block is indented where it lands.
// A mutant may hold several replace/with pairs, in the same region.

// Mutant is one known-wrong variant of a lesson's code.
type Mutant struct {
	Lesson string
	Name   string
	Region string
	Kind   string // mistake, misconception or kafka-bug
	Why    string
	Edits  []Edit
	Line   int // of its === line in the catalogue
}

// Edit replaces one piece of a region's reference code.
type Edit struct {
	Replace, With []string // lines
}

// MutantsFile is the path of lesson l's catalogue from the repository root.
func MutantsFile(l lessons.Lesson) string { return "lessons/" + l.Dir() + "/mutants.txt" }

var mutantKinds = []string{"mistake", "misconception", "kafka-bug"}

// LoadMutants reads lesson l's catalogue.
func (c *Course) LoadMutants(l lessons.Lesson) ([]Mutant, error) {
	name := MutantsFile(l)
	b, err := os.ReadFile(filepath.Join(c.Root, name))
	if err != nil {
		return nil, err
	}
	return parseMutants(name, l.Number, b)
}

func parseMutants(file, lesson string, b []byte) ([]Mutant, error) {
	var out []Mutant
	var m *Mutant
	var block *[]string // the replace or with block being read
	fail := func(n int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", file, n, fmt.Sprintf(format, args...))
	}
	closeMutant := func(n int) error {
		if m == nil {
			return nil
		}
		switch {
		case m.Region == "":
			return fail(m.Line, "mutant %q names no region", m.Name)
		case m.Why == "":
			return fail(m.Line, "mutant %q says no why: what is wrong with it, for the student", m.Name)
		case len(m.Edits) == 0:
			return fail(m.Line, "mutant %q has no edit", m.Name)
		case !contains(mutantKinds, m.Kind):
			return fail(m.Line, "mutant %q: kind %q, want one of %v", m.Name, m.Kind, mutantKinds)
		}
		for _, e := range m.Edits {
			if len(trimBlock(e.Replace)) == 0 {
				return fail(m.Line, "mutant %q: an empty replace block", m.Name)
			}
		}
		out = append(out, *m)
		m, block = nil, nil
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "=== "):
			if err := closeMutant(n); err != nil {
				return nil, err
			}
			m = &Mutant{Lesson: lesson, Name: strings.TrimSpace(line[4:]), Line: n}
			for _, o := range out {
				if o.Name == m.Name {
					return nil, fail(n, "two mutants named %q", m.Name)
				}
			}
		case m == nil:
			if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#") {
				return nil, fail(n, "text outside a mutant (start one with \"=== name\")")
			}
		case line == "--- replace":
			m.Edits = append(m.Edits, Edit{})
			block = &m.Edits[len(m.Edits)-1].Replace
		case line == "--- with":
			if len(m.Edits) == 0 || block != &m.Edits[len(m.Edits)-1].Replace {
				return nil, fail(n, "--- with must follow a --- replace block")
			}
			block = &m.Edits[len(m.Edits)-1].With
		case block != nil:
			*block = append(*block, line)
		case strings.HasPrefix(line, "region:"):
			m.Region = strings.TrimSpace(strings.TrimPrefix(line, "region:"))
		case strings.HasPrefix(line, "kind:"):
			m.Kind = strings.TrimSpace(strings.TrimPrefix(line, "kind:"))
		case strings.HasPrefix(line, "why:"):
			m.Why = strings.TrimSpace(strings.TrimPrefix(line, "why:"))
		case strings.HasPrefix(line, "  ") && m.Why != "":
			m.Why += " " + strings.TrimSpace(line)
		case strings.TrimSpace(line) == "":
		default:
			return nil, fail(n, "unexpected line in mutant %q: %q", m.Name, line)
		}
	}
	if err := closeMutant(n); err != nil {
		return nil, err
	}
	return out, sc.Err()
}

// trimBlock drops the blank lines that end a block (they separate mutants).
func trimBlock(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Apply returns the reference file holding m's region with m's edits made,
// and that file's path from the root.
func (c *Course) Apply(m Mutant) (string, []byte, error) {
	var region *Region
	for _, r := range c.RegionsOf(m.Lesson) {
		if r.Name == m.Region {
			region = &r
			break
		}
	}
	if region == nil {
		return "", nil, fmt.Errorf("mutant %q: lesson %s has no region %q", m.Name, m.Lesson, m.Region)
	}
	src, err := os.ReadFile(filepath.Join(c.Root, region.File))
	if err != nil {
		return "", nil, err
	}
	lines := strings.SplitAfter(string(src), "\n")
	start, end, err := regionBody(lines, region.Line)
	if err != nil {
		return "", nil, err
	}
	body := lines[start:end]
	for i, e := range m.Edits {
		if body, err = applyEdit(body, e); err != nil {
			return "", nil, fmt.Errorf("mutant %q no longer applies to %s (%s): edit %d: %w", m.Name, region.Name, region.File, i+1, err)
		}
	}
	out := slices.Concat(lines[:start], body, lines[end:])
	return region.File, []byte(strings.Join(out, "")), nil
}

// regionBody returns the line range [start, end) of the reference code of
// the region whose begin marker is on line begin (1-based).
func regionBody(lines []string, begin int) (int, int, error) {
	for i := begin; i < len(lines); i++ {
		if m := marker.FindStringSubmatch(strings.TrimRight(lines[i], "\r\n")); m != nil {
			if m[2] != "stub" {
				return 0, 0, fmt.Errorf("line %d: a region's reference code ends at its stub marker", i+1)
			}
			return begin, i, nil
		}
	}
	return 0, 0, fmt.Errorf("line %d: the region has no stub marker", begin)
}

// applyEdit makes one edit in body, lines with their newlines.
func applyEdit(body []string, e Edit) ([]string, error) {
	replace, with := trimBlock(e.Replace), trimBlock(e.With)
	if len(replace) == 1 {
		piece := strings.TrimSpace(replace[0])
		var at []int
		for i, line := range body {
			if n := strings.Count(line, piece); n > 0 {
				for range n {
					at = append(at, i)
				}
			}
		}
		if len(at) != 1 {
			return nil, fmt.Errorf("%q is in the region %d times, want once", piece, len(at))
		}
		i := at[0]
		indent := leadingSpace(body[i])
		repl := make([]string, len(with))
		for j, w := range with {
			if j == 0 {
				repl[j] = strings.TrimSpace(w)
			} else {
				repl[j] = indent + strings.TrimLeft(w, " \t")
			}
		}
		out := append([]string{}, body[:i]...)
		out = append(out, strings.Replace(body[i], piece, strings.Join(repl, "\n"), 1))
		return append(out, body[i+1:]...), nil
	}
	var found []int
	for i := 0; i+len(replace) <= len(body); i++ {
		match := true
		for j, r := range replace {
			if strings.TrimSpace(body[i+j]) != strings.TrimSpace(r) {
				match = false
				break
			}
		}
		if match {
			found = append(found, i)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("the %d lines starting %q are in the region %d times, want once", len(replace), strings.TrimSpace(replace[0]), len(found))
	}
	i := found[0]
	base, written := leadingSpace(body[i]), leadingSpace(replace[0])
	out := append([]string{}, body[:i]...)
	for _, w := range with {
		out = append(out, base+strings.TrimPrefix(w, written)+"\n")
	}
	return append(out, body[i+len(replace):]...), nil
}

func leadingSpace(s string) string { return s[:len(s)-len(strings.TrimLeft(s, " \t"))] }

// variant is a build of lesson l's exercise with its regions solved and
// some reference files replaced: the solution itself when override is
// empty, a mutant otherwise. It is built from the exercise module with
// go's -overlay, so the tree on disk is never touched.
type variant struct {
	binary string
	dir    string // where it runs
}

// buildVariant compiles lesson l's tests against the solved exercise with
// override's reference files (path from the root -> content), into tmp.
// A compile error is returned as a *buildError.
func (c *Course) buildVariant(l lessons.Lesson, override map[string][]byte, tmp, name string) (*variant, error) {
	want := Tree{}
	if err := c.lesson(want, l, "exercises", "", override); err != nil {
		return nil, err
	}
	overlay := map[string]string{}
	dir := filepath.Join(tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for i, p := range slices.Sorted(maps.Keys(want)) {
		full := filepath.Join(c.Root, p)
		if have, err := os.ReadFile(full); err == nil && bytes.Equal(have, want[p]) {
			continue
		}
		f := filepath.Join(dir, fmt.Sprintf("%d-%s", i, filepath.Base(p)))
		if err := os.WriteFile(f, want[p], 0o644); err != nil {
			return nil, err
		}
		overlay[full] = f
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	b, _ := json.Marshal(map[string]any{"Replace": overlay})
	if err := os.WriteFile(overlayFile, b, 0o644); err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, l.Number+".test")
	cmd := exec.Command("go", "test", "-c", "-vet=off", "-ldflags=-s -w", "-overlay", overlayFile, "-o", bin, "./"+l.Dir()+"/")
	cmd.Dir = filepath.Join(c.Root, "exercises")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, &buildError{string(out)}
	}
	return &variant{binary: bin, dir: dir}, nil
}

type buildError struct{ out string }

func (e *buildError) Error() string { return "does not compile:\n" + e.out }

// outcome is how a variant fared against the lesson's tests.
type outcome struct {
	Caught   bool
	By       string // the first test that failed, or timed out
	Test     string // the test that failed, when runEach knows it
	Output   string
	Duration time.Duration
}

var (
	failLine    = regexp.MustCompile(`(?m)^--- FAIL: (\S+)`)
	timeoutLine = regexp.MustCompile(`(?m)^\s+(Test\S+) \(`)
)

// run runs every test of the variant, stopping at the first failure.
func (v *variant) run(timeout time.Duration) outcome {
	start := time.Now()
	cmd := exec.Command(v.binary, "-test.count=1", "-test.failfast", "-test.timeout="+timeout.String())
	cmd.Dir = v.dir
	out, err := cmd.CombinedOutput()
	o := judge(string(out), err)
	o.Duration = time.Since(start)
	return o
}

// runEach runs the variant's tests one at a time, each in a process of
// its own, in order, and stops at the first that fails: the verdict of
// run, in the order that finds a failing test soonest. Together they get
// timeout.
func (v *variant) runEach(tests []string, timeout time.Duration) outcome {
	start := time.Now()
	for _, name := range tests {
		left := timeout - time.Since(start)
		if left <= 0 {
			return outcome{Caught: true, By: "(time-out)", Duration: time.Since(start)}
		}
		cmd := exec.Command(v.binary, "-test.run", "^"+name+"$", "-test.count=1", "-test.timeout="+left.String())
		cmd.Dir = v.dir
		out, err := cmd.CombinedOutput()
		if o := judge(string(out), err); o.Caught {
			if !strings.HasPrefix(o.By, name) {
				o.By = name + " " + o.By // a panic or time-out outside the test's report
			}
			o.Test, o.Duration = name, time.Since(start)
			return o
		}
	}
	return outcome{Duration: time.Since(start)}
}

// judge reads the output of a test binary that exited with err.
func judge(out string, err error) outcome {
	o := outcome{Caught: err != nil, Output: out}
	if m := failLine.FindStringSubmatch(o.Output); m != nil {
		o.By = strings.SplitN(m[1], "/", 2)[0]
	} else if strings.Contains(o.Output, "panic: test timed out") {
		o.By = "(time-out)"
		if m := timeoutLine.FindStringSubmatch(o.Output[strings.Index(o.Output, "panic: test timed out"):]); m != nil {
			o.By = m[1] + " (time-out)"
		}
	} else if err != nil {
		o.By = "(the test binary failed: " + firstLine(o.Output) + ")"
	}
	return o
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
