// Target of the Go tests: calls main.add in a loop.
// usage: gotarget [ITERATIONS (-1: forever)] [SLEEP_US between iterations]
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

//go:noinline
func add(a, b int) int {
	if a < 0 {
		return -1
	}
	return a + b
}

func main() {
	iterations, sleepUs := -1, 100000
	if len(os.Args) > 1 {
		iterations, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		sleepUs, _ = strconv.Atoi(os.Args[2])
	}
	fmt.Printf("gotarget pid %d\n", os.Getpid())
	sink := 0
	for i := 0; iterations < 0 || i < iterations; i++ {
		sink += add(i%100, 1000)
		if sleepUs > 0 {
			time.Sleep(time.Duration(sleepUs) * time.Microsecond)
		}
	}
	if sink == -42 {
		fmt.Println(sink)
	}
}
