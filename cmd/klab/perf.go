package main

import "errors"

func runPerf(args []string) error { return errors.New("todo") }
