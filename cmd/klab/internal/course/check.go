package course

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"klab.dev/klab/lessons"
)

// Check verifies the course's invariants and writes what it finds to w:
// the generated trees are current; every exercise compiles and each of its
// tests fails, run alone, with the lesson's message; the exercise solved
// passes the same tests; every region has hints; and every mutant in the
// lesson's catalogue makes one of its tests fail. It returns an error if
// any invariant fails. With only, lesson numbers, it checks those lessons.
func (c *Course) Check(w io.Writer, only ...string) error {
	want, err := c.Generate()
	if err != nil {
		return err
	}
	have, err := c.Existing()
	if err != nil {
		return err
	}
	if diff := Diff(want, have); len(diff) > 0 {
		return fmt.Errorf("exercises/ and solutions/ are not what `klab course gen` makes from the reference code:\n  %s\nrun: go run ./cmd/klab course gen",
			strings.Join(diff, "\n  "))
	}
	fmt.Fprintln(w, "generated trees: current")

	tmp, err := os.MkdirTemp("", "klab-course-check")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var failed []string
	for _, l := range lessons.All {
		if len(only) > 0 && !slices.ContainsFunc(only, func(n string) bool { f, _ := lessons.Find(n); return f == l }) {
			continue
		}
		problems, err := c.checkLesson(w, l, tmp)
		if err != nil {
			return err
		}
		failed = append(failed, problems...)
	}
	if len(failed) > 0 {
		return fmt.Errorf("course invariants broken:\n%s", strings.Join(failed, "\n"))
	}
	return nil
}

// checkLesson checks one lesson's invariants and returns what is broken.
func (c *Course) checkLesson(w io.Writer, l lessons.Lesson, tmp string) ([]string, error) {
	var failed []string
	if err := c.checkHints(l); err != nil {
		failed = append(failed, fmt.Sprintf("lesson %s: %v", l.Number, err))
	}
	// The two builds at once: each leaves a core idle while it links.
	var ex string
	var exErr error
	built := make(chan struct{})
	go func() {
		ex, exErr = c.testBinary(filepath.Join(c.Root, "exercises"), l, filepath.Join(tmp, l.Number+"-exercise.test"))
		close(built)
	}()
	sol, err := c.buildVariant(l, nil, tmp, l.Number+"-solution")
	<-built
	if exErr != nil {
		return nil, fmt.Errorf("lesson %s: the exercise does not compile:\n%w", l.Number, exErr)
	}
	if err != nil {
		return nil, fmt.Errorf("lesson %s: the solution: %w", l.Number, err)
	}
	exTests, err := listTests(ex)
	if err != nil {
		return nil, err
	}
	solTests, err := listTests(sol.binary)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(exTests, solTests) || len(exTests) == 0 {
		return nil, fmt.Errorf("lesson %s: the exercise has tests %v, the solution %v", l.Number, exTests, solTests)
	}
	message := "lesson " + l.Number + ":"
	// Each test runs alone on the stubs, one after another, beside the
	// solution's runs: a stub fails at once, so these cost the solution's
	// timing-sensitive tests little.
	stubProblems := make(chan []string, 1)
	go func() {
		var problems []string
		for _, name := range exTests {
			out, err := runTest(ex, name)
			switch {
			case err == nil:
				problems = append(problems, fmt.Sprintf("lesson %s: %s passes on the stubs", l.Number, name))
			case !strings.Contains(out, message):
				problems = append(problems, fmt.Sprintf("lesson %s: %s fails on the stubs without naming the lesson:\n%s", l.Number, name, indent(out)))
			}
		}
		stubProblems <- problems
	}()
	took, fails := runSolution(sol.binary, exTests)
	for _, name := range exTests {
		if out, ok := fails[name]; ok {
			failed = append(failed, fmt.Sprintf("lesson %s: %s fails with the solution:\n%s", l.Number, name, indent(out)))
		}
	}
	problems := <-stubProblems
	failed = append(failed, problems...)
	fmt.Fprintf(w, "lesson %s: %d tests; %d fail on the stubs with %q; %d pass with the solution\n",
		l.Number, len(exTests), len(exTests)-len(problems), message, len(exTests)-len(fails))

	mutants, err := c.LoadMutants(l)
	if err != nil {
		return append(failed, fmt.Sprintf("lesson %s: %v", l.Number, err)), nil
	}
	caught, problems := c.runCatalogue(w, l, mutants, tmp, exTests, took)
	failed = append(failed, problems...)
	fmt.Fprintf(w, "lesson %s: %d of %d catalogued mutants caught\n", l.Number, caught, len(mutants))
	if len(mutants) < minMutants {
		failed = append(failed, fmt.Sprintf("lesson %s: %d mutants in %s, want at least %d", l.Number, len(mutants), MutantsFile(l), minMutants))
	}
	return failed, nil
}

// minMutants is the fewest known-wrong variants a lesson's catalogue holds.
const minMutants = 8

// tryMutant builds lesson l's exercise with mutant m and runs tests, in
// their order, until one fails.
func (c *Course) tryMutant(l lessons.Lesson, m Mutant, tmp, name string, tests []string, timeout time.Duration) (outcome, error) {
	file, src, err := c.Apply(m)
	if err != nil {
		return outcome{}, err
	}
	v, err := c.buildVariant(l, map[string][]byte{file: src}, tmp, name)
	if err != nil {
		return outcome{}, fmt.Errorf("mutant %q (%s:%d) %w", m.Name, MutantsFile(l), m.Line, err)
	}
	defer os.RemoveAll(v.dir)
	return v.runEach(tests, timeout), nil
}

// testBinary compiles the tests of lesson l's exercise as it is on disk.
func (c *Course) testBinary(module string, l lessons.Lesson, out string) (string, error) {
	cmd := exec.Command("go", "test", "-c", "-o", out, "./"+l.Dir()+"/")
	cmd.Dir = module
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s", b)
	}
	return out, nil
}

func listTests(bin string) ([]string, error) {
	out, err := exec.Command(bin, "-test.list", ".").Output()
	if err != nil {
		return nil, fmt.Errorf("%s -test.list: %w", bin, err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Test") {
			names = append(names, line)
		}
	}
	return names, nil
}

// runSolution runs each test of the solution's binary alone, one after
// another, and returns how long each took and the output of those that
// failed.
func runSolution(bin string, tests []string) (map[string]time.Duration, map[string]string) {
	took, fails := map[string]time.Duration{}, map[string]string{}
	for _, name := range tests {
		start := time.Now()
		out, err := runTest(bin, name)
		took[name] = time.Since(start)
		if err != nil {
			fails[name] = out
		}
	}
	return took, fails
}

// runTest runs one test of a compiled test binary, in a folder of its own.
func runTest(bin, name string) (string, error) {
	cmd := exec.Command(bin, "-test.run", "^"+name+"$", "-test.count=1", "-test.timeout=2m")
	cmd.Dir = filepath.Dir(bin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

// CheckMutants runs lesson l's mutant catalogue (the mutants whose name
// contains only, if it is not empty) and reports which test catches each.
func (c *Course) CheckMutants(w io.Writer, l lessons.Lesson, only string) error {
	all, err := c.LoadMutants(l)
	if err != nil {
		return err
	}
	var mutants []Mutant
	for _, m := range all {
		if strings.Contains(m.Name, only) {
			mutants = append(mutants, m)
		}
	}
	tmp, err := os.MkdirTemp("", "klab-mutants")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sol, err := c.buildVariant(l, nil, tmp, "solution")
	if err != nil {
		return fmt.Errorf("lesson %s: the solution: %w", l.Number, err)
	}
	tests, err := listTests(sol.binary)
	if err != nil {
		return err
	}
	took, fails := runSolution(sol.binary, tests)
	for _, name := range tests {
		if out, ok := fails[name]; ok {
			return fmt.Errorf("lesson %s: the solution fails %s:\n%s", l.Number, name, indent(out))
		}
	}
	caught, problems := c.runCatalogue(w, l, mutants, tmp, tests, took)
	fmt.Fprintf(w, "lesson %s: %d of %d catalogued mutants caught\n", l.Number, caught, len(mutants))
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// catalogueWorkers is how many mutants are built and run at once: a
// build keeps a core busy while another mutant's tests mostly wait on
// brokers and timers. A flaky test under that load could only make a
// mutant look caught, never fail the check.
const catalogueWorkers = 2

// runCatalogue tries each mutant on tests, writes a line for each in
// catalogue order, and returns how many were caught and what is wrong.
// took is how long the solution took on each test: a mutant's tests run
// fastest first (after the one that caught it last time), and together
// they get three times the solution's time and 20 s.
func (c *Course) runCatalogue(w io.Writer, l lessons.Lesson, mutants []Mutant, tmp string, tests []string, took map[string]time.Duration) (int, []string) {
	timeout := 20 * time.Second
	for _, d := range took {
		timeout += 3 * d
	}
	last := loadCatchers(catchersFile())
	defer last.save() // a hint for next time: losing it costs time only
	type result struct {
		o   outcome
		err error
	}
	results := make([]chan result, len(mutants))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	next := make(chan int)
	go func() {
		for i := range mutants {
			next <- i
		}
		close(next)
	}()
	for range catalogueWorkers {
		go func() {
			for i := range next {
				m := mutants[i]
				o, err := c.tryMutant(l, m, tmp, fmt.Sprintf("%s-mutant-%d", l.Number, i), testOrder(tests, took, last.get(m)), timeout)
				if o.Test != "" {
					last.set(m, o.Test)
				}
				results[i] <- result{o, err}
			}
		}()
	}
	caught := 0
	var problems []string
	for i, m := range mutants {
		r := <-results[i]
		switch {
		case r.err != nil:
			problems = append(problems, fmt.Sprintf("lesson %s: %v", l.Number, r.err))
			fmt.Fprintf(w, "  mutant %-48q DOES NOT APPLY\n", m.Name)
		case !r.o.Caught:
			problems = append(problems, fmt.Sprintf("lesson %s: no test catches the mutant %q (%s:%d): %s", l.Number, m.Name, MutantsFile(l), m.Line, m.Why))
			fmt.Fprintf(w, "  mutant %-48q SURVIVED\n", m.Name)
		default:
			caught++
			fmt.Fprintf(w, "  mutant %-48q caught by %s (%s)\n", m.Name, r.o.By, r.o.Duration.Round(100*time.Millisecond))
		}
	}
	return caught, problems
}
