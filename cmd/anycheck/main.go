// Command anycheck finds which instance of an anycast service answers, and by which path.
package main

import (
	"os"

	"github.com/anycheck/anycheck/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
