package main

import (
	"fmt"
	"os"
)

const usage = `usage: tollgate <command> [flags]

commands:
  serve      run the gateway (tollgate serve -h for its flags)
  simulator  run the upstream simulator alone
  verify     replay a data directory offline, check every invariant, print a summary
  catalogue  check the model catalogue: tollgate catalogue check [--config FILE] [--at TIME]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = runServe(args, os.Stdout)
	case "simulator":
		err = runSimulator(args)
	case "verify":
		err = runVerify(args, os.Stdout)
	case "catalogue":
		err = runCatalogue(args, os.Stdout)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "tollgate: unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tollgate %s: %s\n", os.Args[1], err)
		os.Exit(1)
	}
}
