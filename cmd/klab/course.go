package main

import (
	"errors"
	"fmt"
	"os"

	"klab.dev/klab/cmd/klab/internal/course"
	"klab.dev/klab/lessons"
)

const courseHelp = `klab course             list the lessons and where you stand on each
klab course test NN     run lesson NN's exercise tests; on failure, print its hints
klab course solve NN    put the solution into exercises/NN-... (your changed files are kept as .go.mine)
klab course reset NN    put the stubs back into exercises/NN-...
klab course gen         (course authors) regenerate exercises/ and solutions/ from the reference code
klab course check [NN]  (CI) check the course's invariants, for every lesson or the given ones`

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
		ok, err := c.Test(l, os.Stdout, args[2:]...)
		if err == nil && !ok {
			os.Exit(1)
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
	fmt.Println("klab course: each lesson's exercise is in exercises/NN-.../, its text in lessons/NN-.../README.md")
	fmt.Println()
	for _, l := range lessons.All {
		st, err := c.Status(l)
		if err != nil {
			return err
		}
		fmt.Printf("  %s  %-70s %s\n", l.Number, l.Title, st)
		for _, r := range c.RegionsOf(l.Number) {
			fmt.Printf("        write %-32s (from %s)\n", r.Name, r.File)
		}
	}
	fmt.Println("\nRun a lesson's tests: go run ./cmd/klab course test 01")
	return nil
}
