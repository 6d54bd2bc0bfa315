package cli

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// maxLabel is the longest --label, in characters.
const maxLabel = 64

// labelValue is --label: the vantage's name in the document, for compare
// to show instead of the host name (every container or network namespace
// may be "vm"). Printable text of at most maxLabel characters.
type labelValue string

func (l *labelValue) String() string { return string(*l) }

func (l *labelValue) Type() string { return "NAME" }

func (l *labelValue) Set(s string) error {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return errors.New("an empty name; give the vantage a name, or leave --label out to go by the host name")
	case utf8.RuneCountInString(s) > maxLabel:
		return errors.New("longer than 64 characters")
	case strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }):
		return errors.New("control or non-printable characters; a label is text")
	}
	*l = labelValue(s)
	return nil
}

// addLabelFlag gives a measuring command --label.
func addLabelFlag(cmd *cobra.Command, g *globalOptions) {
	cmd.Flags().Var(&g.label, "label", "a name for this vantage point, recorded in the document and shown by compare (default: the host name)")
}
