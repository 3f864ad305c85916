// Command pbxd is the PBX and contact-center appliance: one binary that
// serves the API, and later the SIP and media planes, from one process.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"

	_ "time/tzdata" // appliances may ship without /usr/share/zoneinfo
)

// Set by the linker (see Makefile).
var (
	version = "0.0.0-dev"
	commit  = "unknown"
)

const usage = `pbxd — PBX and contact-center appliance

Usage:
  pbxd serve [flags]   run the appliance (see pbxd serve --help)
  pbxd version         print the version
  pbxd help            show this help
`

func main() {
	if os.Getenv("GOGC") == "" {
		// pbxd's live heap is small (tens of MB even with thousands of
		// calls) and garbage is mostly short-lived SIP messages: collecting
		// at 3x the live heap instead of 2x cuts GC work by about half.
		debug.SetGCPercent(200)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "pbxd %s (%s)\n", version, commit)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "pbxd: unknown command %q\n\n%s", args[0], usage)
	return 2
}
