package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/anycheck/anycheck/internal/report"
)

// version is set at build time: -ldflags "-X github.com/anycheck/anycheck/internal/cli.version=v1.2.3".
var version = "dev"

// toolInfo names this build in every JSON document.
func toolInfo() report.Tool {
	return report.Tool{Name: "anycheck", Version: buildVersion()}
}

func buildVersion() string {
	info, _ := debug.ReadBuildInfo()
	return versionOf(version, info)
}

// versionOf picks the most precise name of this build: the version stamped
// by the Makefile, else the module version `go install module@vX` records,
// else the VCS revision a local `go build` records, else "dev".
func versionOf(stamped string, info *debug.BuildInfo) string {
	if stamped != "dev" && stamped != "" {
		return stamped
	}
	if info == nil {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev+" + s.Value[:12]
		}
	}
	return "dev"
}

func newVersionCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the anycheck version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(s.out, "anycheck %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return runFailed(err)
		},
	}
}
