package cli

import (
	"github.com/spf13/cobra"
)

func newCompletionCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a completion script for the shell, e.g.
  anycheck completion bash > /etc/bash_completion.d/anycheck
  anycheck completion zsh > "${fpath[1]}/_anycheck"
  anycheck completion fish > ~/.config/fish/completions/anycheck.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return runFailed(root.GenBashCompletionV2(s.out, true))
			case "zsh":
				return runFailed(root.GenZshCompletion(s.out))
			case "fish":
				return runFailed(root.GenFishCompletion(s.out, true))
			}
			return usageErr("completion %q: shell must be bash, zsh or fish", args[0])
		},
	}
}
