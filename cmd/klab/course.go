package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"klab.dev/klab/cmd/klab/internal/course"
	"klab.dev/klab/lessons"
)

const courseHelp = `klab course                    list the lessons, where you stand on each, and the files to edit
klab course test NN [flags]    run lesson NN's exercise tests: a line per test, then what failed
    --faults                   also run the fault tests (crashes, pauses, partitions) on your code (06 on)
    -v                         print everything the tests write
    -run REGEXP, ...           any other flag goes to go test
klab course hint NN [NAME]     the next hint for lesson NN (or for its piece NAME); --level N for level N
klab course solve NN           put the solution into exercises/NN-... (your changed files are kept as .go.mine)
klab course reset NN           put the stubs back into exercises/NN-...

For the course's authors:
klab course gen                regenerate exercises/ and solutions/ from the reference code
klab course check [NN ...]     (CI) check the course's invariants, mutant catalogues included
klab course mutants NN [NAME]  run lesson NN's catalogue of known-wrong variants against its tests
klab course mutate NN [TEXT]   generic mutation testing of lesson NN's regions: a score and the survivors`

func runCourse(args []string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := course.FindRoot(wd)
	if err != nil {
		return err
	}
	c, err := course.Scan(root)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return courseList(c)
	}
	lesson := func() (lessons.Lesson, error) {
		if len(args) < 2 {
			return lessons.Lesson{}, fmt.Errorf("which lesson? usage:\n%s", courseHelp)
		}
		l, ok := lessons.Find(args[1])
		if !ok {
			return l, fmt.Errorf("there is no lesson %q; `klab course` lists them", args[1])
		}
		return l, nil
	}
	switch args[0] {
	case "test":
		l, err := lesson()
		if err != nil {
			return err
		}
		opt := course.TestOptions{}
		for _, a := range args[2:] {
			switch a {
			case "--faults", "-faults":
				opt.Faults = true
			case "-v", "--v", "-test.v":
				opt.Verbose = true
			default:
				opt.GoTestArgs = append(opt.GoTestArgs, a)
			}
		}
		ok, err := c.Test(l, os.Stdout, opt)
		if err == nil && !ok {
			os.Exit(1)
		}
		return err
	case "hint":
		l, err := lesson()
		if err != nil {
			return err
		}
		fs := flag.NewFlagSet("course hint", flag.ContinueOnError)
		level := fs.Int("level", 0, "show this level of the hints (1 is the idea; the last is nearly code)")
		rest, err := parseInterspersed(fs, args[2:])
		if err != nil {
			return err
		}
		return c.ShowHint(os.Stdout, l, strings.Join(rest, " "), *level)
	case "mutants":
		l, err := lesson()
		if err != nil {
			return err
		}
		return c.CheckMutants(os.Stdout, l, strings.Join(args[2:], " "))
	case "mutate":
		l, err := lesson()
		if err != nil {
			return err
		}
		rep, err := c.Mutate(os.Stdout, l, strings.Join(args[2:], " "))
		if err == nil && rep.Killed+rep.Survived == 0 {
			return errors.New("no mutant ran")
		}
		return err
	case "solve", "reset":
		l, err := lesson()
		if err != nil {
			return err
		}
		wrote, err := c.Put(l, args[0] == "solve")
		for _, p := range wrote {
			fmt.Println("wrote", p)
		}
		if err == nil && len(wrote) == 0 {
			fmt.Println("nothing to change")
		}
		return err
	case "gen":
		t, err := c.Generate()
		if err != nil {
			return err
		}
		have, err := c.Existing()
		if err != nil {
			return err
		}
		diff := course.Diff(t, have)
		if err := c.Write(t, have); err != nil {
			return err
		}
		for _, d := range diff {
			fmt.Println(d)
		}
		fmt.Printf("exercises/ and solutions/ are current (%d files, %d changed)\n", len(t), len(diff))
		return nil
	case "check":
		return c.Check(os.Stdout, args[1:]...)
	case "help", "-h", "--help":
		fmt.Println(courseHelp)
		return nil
	}
	return errors.New("unknown course command; usage:\n" + courseHelp)
}

func courseList(c *course.Course) error {
	progress, err := c.LoadProgress()
	if err != nil {
		return err
	}
	width := 0
	for _, l := range lessons.All {
		width = max(width, utf8.RuneCountInString(l.Title))
	}
	fmt.Println("klab course: lesson NN's text is lessons/NN-.../README.md; you write code in exercises/NN-.../")
	fmt.Println()
	fmt.Printf("  %s  %-*s  %s\n", lessons.Tour.Number, width, lessons.Tour.Title, "nothing to write: read "+lessons.Tour.README())
	for _, l := range lessons.All {
		st, err := c.Status(l, progress)
		if err != nil {
			return err
		}
		fmt.Printf("  %s  %-*s  %s\n", l.Number, width, l.Title, st)
		files := map[string][]string{}
		var order []string
		for _, r := range c.RegionsOf(l.Number) {
			f := "exercises/" + l.Dir() + "/" + r.File
			if files[f] == nil {
				order = append(order, f)
			}
			files[f] = append(files[f], r.Name)
		}
		for _, f := range order {
			fmt.Printf("      edit %s: %s\n", f, strings.Join(files[f], ", "))
		}
	}
	fmt.Println("\nRun a lesson's tests: go run ./cmd/klab course test 01    Stuck: go run ./cmd/klab course hint 01")
	return nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
