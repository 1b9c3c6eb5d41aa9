package course

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"klab.dev/klab/lessons"
)

// Check verifies the course's invariants and writes what it finds to w:
// the generated trees are current; every exercise compiles and each of its
// tests fails, run alone, with the lesson's message; the solution has the
// same tests and they pass. It returns an error if any invariant fails.
// With only, lesson numbers, it runs the tests of those lessons alone.
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
		ex, err := c.testBinary(filepath.Join(c.Root, "exercises"), l, filepath.Join(tmp, l.Number+"-exercise.test"))
		if err != nil {
			return fmt.Errorf("lesson %s: the exercise does not compile:\n%w", l.Number, err)
		}
		sol, err := c.testBinary(c.Root, l, filepath.Join(tmp, l.Number+"-solution.test"))
		if err != nil {
			return fmt.Errorf("lesson %s: the solution does not compile:\n%w", l.Number, err)
		}
		exTests, err := listTests(ex)
		if err != nil {
			return err
		}
		solTests, err := listTests(sol)
		if err != nil {
			return err
		}
		if !slices.Equal(exTests, solTests) || len(exTests) == 0 {
			return fmt.Errorf("lesson %s: the exercise has tests %v, the solution %v", l.Number, exTests, solTests)
		}
		message := "lesson " + l.Number + ":"
		stubFails, solutionPasses := 0, 0
		for _, name := range exTests {
			out, err := runTest(ex, name)
			switch {
			case err == nil:
				failed = append(failed, fmt.Sprintf("lesson %s: %s passes on the stubs", l.Number, name))
			case !strings.Contains(out, message):
				failed = append(failed, fmt.Sprintf("lesson %s: %s fails on the stubs without naming the lesson:\n%s", l.Number, name, indent(out)))
			default:
				stubFails++
			}
			if out, err := runTest(sol, name); err != nil {
				failed = append(failed, fmt.Sprintf("lesson %s: %s fails with the solution:\n%s", l.Number, name, indent(out)))
			} else {
				solutionPasses++
			}
		}
		fmt.Fprintf(w, "lesson %s: %d tests; %d fail on the stubs with %q; %d pass with the solution\n",
			l.Number, len(exTests), stubFails, message, solutionPasses)
	}
	if len(failed) > 0 {
		return fmt.Errorf("course invariants broken:\n%s", strings.Join(failed, "\n"))
	}
	return nil
}

// testBinary compiles the tests of lesson l's copy in module dir.
func (c *Course) testBinary(module string, l lessons.Lesson, out string) (string, error) {
	pkg := "./" + l.Dir()
	if module == c.Root {
		pkg = "./solutions/" + l.Dir()
	}
	cmd := exec.Command("go", "test", "-c", "-o", out, pkg)
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
