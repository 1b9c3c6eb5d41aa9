package course

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"klab.dev/klab/lessons"
)

// TestOptions are what `klab course test NN` takes besides the lesson.
type TestOptions struct {
	// Faults adds the reliability tests of the lesson's copy of
	// broker/clustertest: crashes, pauses and partitions, run against the
	// student's code. Only lessons whose tests start clusters have them.
	Faults bool
	// Verbose prints every line the tests write, as go test -v does.
	Verbose bool
	// GoTestArgs go to go test as they are: -run, -count, -timeout, ...
	GoTestArgs []string
}

// testEvent is one line of `go test -json` (see `go doc test2json`).
type testEvent struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// testResult is what the runner learns of one top-level test.
type testResult struct {
	name    string
	pkg     string
	passed  bool
	skipped bool
	output  strings.Builder
}

// Test runs lesson l's exercise tests and writes to w a line per test as it
// ends, then what failed (a line each) and how many pass. It records the
// run in the student's progress and reports whether every test passed.
func (c *Course) Test(l lessons.Lesson, w io.Writer, opt TestOptions) (bool, error) {
	progress, err := c.LoadProgress()
	if err != nil {
		return false, err
	}
	hash, err := c.exerciseHash(l)
	if err != nil {
		return false, err
	}
	if _, ran := progress.Runs[l.Number]; !ran {
		fmt.Fprintf(w, "Building lesson %s and its tests. The first build takes a minute or two; later runs reuse Go's build cache.\n", l.Number)
	}
	pkgs := []string{"./" + l.Dir() + "/"}
	if opt.Faults {
		fault := filepath.Join(c.Root, "exercises", l.Dir(), "broker", "clustertest")
		if !hasTests(fault) {
			return false, fmt.Errorf("lesson %s has no fault tests: only lessons whose exercise holds broker/clustertest do (06 on)", l.Number)
		}
		pkgs = append(pkgs, "./"+l.Dir()+"/broker/clustertest/")
	}
	args := append([]string{"test", "-count=1", "-json"}, opt.GoTestArgs...)
	if opt.Verbose {
		args = append(args, "-v")
	}
	cmd := exec.Command("go", append(args, pkgs...)...)
	cmd.Dir = filepath.Join(c.Root, "exercises")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return false, err
	}
	results, buildOutput := readTestEvents(stdout, w, opt.Verbose)
	waitErr := cmd.Wait()
	if _, ok := waitErr.(*exec.ExitError); waitErr != nil && !ok {
		return false, waitErr
	}

	run := Run{Exercise: hash, At: time.Now(), Builds: true, Selected: selects(opt.GoTestArgs)}
	for _, r := range results {
		if r.skipped {
			continue
		}
		run.Tests++
		if r.passed {
			run.Passed++
		} else {
			run.Failing = append(run.Failing, r.name)
		}
	}
	passed := waitErr == nil && run.Tests > 0 && run.Passed == run.Tests
	switch {
	case waitErr != nil && run.Tests == 0:
		run.Builds = false
		fmt.Fprintf(w, "\nLesson %s does not compile:\n%s%s", l.Number, buildOutput, stderr.String())
	case waitErr != nil && run.Passed == run.Tests:
		// Every test that ended passed, yet go test failed: a panic or a
		// time-out outside a test's own report.
		fmt.Fprintf(w, "\nThe tests did not finish:\n%s%s", buildOutput, stderr.String())
	default:
		c.summarize(w, l, results, run)
	}
	progress.Runs[l.Number] = run
	if err := c.SaveProgress(progress); err != nil {
		return false, err
	}
	return passed, nil
}

// readTestEvents reads go test's JSON stream: it prints a line as each
// top-level test ends (every line of output when verbose) and returns the
// results in the order the tests ended, and any build output.
func readTestEvents(r io.Reader, w io.Writer, verbose bool) ([]*testResult, string) {
	var results []*testResult
	byName := map[string]*testResult{}
	var build strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev testEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			build.WriteString(sc.Text() + "\n")
			continue
		}
		if ev.Action == "build-output" {
			build.WriteString(ev.Output)
			continue
		}
		if verbose && ev.Output != "" {
			io.WriteString(w, ev.Output)
		}
		if ev.Test == "" {
			if ev.Action == "output" && !strings.HasPrefix(ev.Output, "ok ") && !strings.HasPrefix(ev.Output, "FAIL") &&
				!strings.HasPrefix(ev.Output, "PASS") && !strings.HasPrefix(ev.Output, "?") {
				build.WriteString(ev.Output) // a panic outside a test, a setup failure
			}
			continue
		}
		top, _, _ := strings.Cut(ev.Test, "/")
		key := ev.Package + " " + top
		res := byName[key]
		if res == nil {
			res = &testResult{name: top, pkg: ev.Package}
			byName[key] = res
		}
		switch {
		case ev.Action == "output":
			res.output.WriteString(ev.Output)
		case ev.Test != top:
			// a subtest's end: its parent reports the outcome
		case ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip":
			res.passed = ev.Action == "pass"
			res.skipped = ev.Action == "skip"
			results = append(results, res)
			if !verbose {
				mark := map[string]string{"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[ev.Action]
				fmt.Fprintf(w, "  %s %s (%.1fs)\n", mark, top, ev.Elapsed)
			}
		}
	}
	return results, build.String()
}

// summarize writes what failed, a line per test, each stub still in place
// once with how often it was hit, and the count of passing tests.
func (c *Course) summarize(w io.Writer, l lessons.Lesson, results []*testResult, run Run) {
	stubs := map[string]int{}
	var order []string
	var failures []string
	for _, r := range results {
		out := r.output.String()
		for _, m := range stubMessage.FindAllString(out, -1) {
			if stubs[m] == 0 {
				order = append(order, m)
			}
			stubs[m]++
		}
		if !r.passed && !r.skipped {
			say := stubMessage.ReplaceAllStringFunc(firstFailure(out), func(m string) string {
				return "the stub of " + stubMessage.FindStringSubmatch(m)[1]
			})
			failures = append(failures, fmt.Sprintf("  %s: %s", r.name, say))
		}
	}
	fmt.Fprintln(w)
	if len(order) > 0 {
		fmt.Fprintln(w, "Stubs still in place:")
		for _, m := range order {
			fmt.Fprintf(w, "  %s  (hit %d times)\n", m, stubs[m])
		}
		fmt.Fprintln(w)
	}
	if len(failures) > 0 {
		fmt.Fprintln(w, "Failing:")
		for _, f := range failures {
			fmt.Fprintln(w, f)
		}
		fmt.Fprintln(w)
	}
	switch {
	case run.Passed < run.Tests:
		fmt.Fprintf(w, "%d of %d tests pass.\n", run.Passed, run.Tests)
		fmt.Fprintf(w, "One test with all its output: go run ./cmd/klab course test %s -run '^%s$' -v\n", l.Number, run.Failing[0])
		fmt.Fprintf(w, "Stuck? go run ./cmd/klab course hint %s\n", l.Number)
	case run.Tests == 0:
		fmt.Fprintf(w, "No test ran: does -run match a test of lesson %s? Their names are in exercises/%s/*_test.go\n", l.Number, l.Dir())
	case run.Selected:
		fmt.Fprintf(w, "The selected tests pass (%d of %d). The whole lesson: go run ./cmd/klab course test %s\n", run.Passed, run.Tests, l.Number)
	default:
		fmt.Fprintf(w, "Lesson %s passes: %d of %d tests. On to the next one: go run ./cmd/klab course\n", l.Number, run.Passed, run.Tests)
	}
}

// stubMessage matches the error a stub returns (lessons.TodoError).
var stubMessage = regexp.MustCompile(`lesson \d\d: implement (\S+) — see \S+README\.md`)

var (
	testifyField = regexp.MustCompile(`^\s+(Error Trace|Error|Test|Messages):\s*(.*)$`)
	testifyMore  = regexp.MustCompile(`^\s{8,}\t\s*(.*)$`)
	plainFailure = regexp.MustCompile(`^\s+\S+\.go:\d+: (.+)$`)
)

// firstFailure finds in a failed test's output the one line that says what
// went wrong: testify's Messages (what the test expected) with its Error, or
// the first t.Errorf line, or a panic or time-out.
func firstFailure(out string) string {
	lines := strings.Split(out, "\n")
	var field string
	fields := map[string][]string{}
	for _, line := range lines {
		if m := testifyField.FindStringSubmatch(line); m != nil {
			field = m[1]
			if m[2] != "" {
				fields[field] = append(fields[field], strings.TrimSpace(m[2]))
			}
			continue
		}
		if field != "" {
			if m := testifyMore.FindStringSubmatch(line); m != nil {
				fields[field] = append(fields[field], strings.TrimSpace(m[1]))
				continue
			}
			if len(fields["Error"]) > 0 {
				break // the first assertion is enough
			}
			field = ""
		}
	}
	var say string
	switch {
	case len(fields["Messages"]) > 0 && len(fields["Error"]) > 0:
		say = strings.Join(fields["Messages"], " ") + " — " + strings.Join(fields["Error"], " ")
	case len(fields["Error"]) > 0:
		say = strings.Join(fields["Error"], " ")
	}
	if say == "" {
		for _, line := range lines {
			if m := plainFailure.FindStringSubmatch(line); m != nil && !strings.Contains(line, "Error Trace:") {
				say = m[1]
				break
			}
			if strings.HasPrefix(line, "panic: ") {
				say = line
				break
			}
		}
	}
	if say == "" {
		say = "failed (run it with -v to see why)"
	}
	if r := []rune(say); len(r) > 240 {
		say = string(r[:240]) + "…"
	}
	return say
}

// selects reports whether go test arguments pick some tests only.
func selects(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "-run" || strings.HasPrefix(a, "-run=") || a == "--run" || strings.HasPrefix(a, "--run=") ||
			a == "-skip" || strings.HasPrefix(a, "-skip=")
	})
}

// hasTests reports whether dir holds a Go test file.
func hasTests(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	return len(m) > 0
}
