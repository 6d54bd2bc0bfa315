package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Main runs anycheck with args (without the program name) and returns the
// process exit code. It is the only place that decides exit codes.
//
// A first Ctrl-C or SIGTERM cancels the run, which prints what it has and
// returns; should anything not heed that within signalGrace, Main returns
// anyway. A second signal ends the process at once (the default action):
// after stopNotice of waiting Main says so on stderr.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, newStreams(in, out, errOut), defaultDeps()) }()
	select {
	case c := <-code:
		return c
	case <-ctx.Done():
	}
	stop() // the next signal takes its default action: the process ends
	grace := time.NewTimer(signalGrace)
	defer grace.Stop()
	select {
	case c := <-code:
		return c
	case <-time.After(stopNotice):
		fmt.Fprintf(errOut, "anycheck: stopping; interrupt again to quit at once\n")
	}
	select {
	case c := <-code:
		return c
	case <-grace.C:
		fmt.Fprintf(errOut, "anycheck: interrupted, and the run did not stop within %s; exiting\n", signalGrace)
		return ExitInterrupted
	}
}

// signalGrace is how long a run may take to stop after a signal; after
// stopNotice the user is told that a second signal ends it at once.
const (
	signalGrace = 3 * time.Second
	stopNotice  = time.Second
)

// run is Main with the context, streams and dependencies injected (tests).
func run(ctx context.Context, args []string, s *streams, d *deps) int {
	root := newRootCmd(s, d)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && !errors.Is(err, errPartial) && !errors.Is(err, errInterrupted) {
		fmt.Fprintf(s.err, "anycheck: %s\n", oneLine(err.Error()))
		if h := hintOf(err); h != "" {
			fmt.Fprintf(s.err, "hint: %s\n", h)
		}
		if exitCode(err) == ExitUsage && !strings.Contains(err.Error(), "--help") {
			fmt.Fprintf(s.err, "run 'anycheck --help' for usage\n")
		}
	}
	return exitCode(err)
}

// oneLine keeps an error message on one line: errors can quote remote text.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

func newRootCmd(s *streams, d *deps) *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "anycheck",
		Short: "Which anycast instance do I reach, and by which path?",
		Long: `anycheck asks anycast DNS services who they are (CHAOS identity queries and
EDNS NSID) and traces the path to them on the same flow (Paris traceroute), so
the instance that answers is the one at the end of the path shown.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// A bare "anycheck" with an unknown word is a usage error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.timeoutSet = cmd.Flags().Changed("timeout")
			g.command = cmd.Name()
			if fl := cmd.Flags().Lookup("output"); fl != nil && !fl.Changed {
				g.output = fl.DefValue // the running command's default format
			}
			return g.validate()
		},
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if hint := suggestFlag(cmd, err); hint != "" {
			return &exitError{code: ExitUsage, err: err, hint: hint}
		}
		return usageErr("%s", flagError(err))
	})
	g.register(root)
	root.AddCommand(
		newIDCmd(g, s, d, nil),
		newTraceCmd(g, s, d, nil),
		newWhoisCmd(g, s, d, nil),
		newCompareCmd(g, s, d, nil),
		newWatchCmd(g, s, d, nil),
		newExporterCmd(g, s, d, nil),
		newAtlasCmd(g, s, d),
		newCensusCmd(g, s, d),
		newVersionCmd(s),
		newCompletionCmd(s),
	)
	addCompletions(root)
	return root
}
