//go:build !linux

package lab

import (
	"errors"
	"net/http"
)

// HTTPClient needs Linux network namespaces.
func (l *Lab) HTTPClient(node string) (*http.Client, error) {
	return nil, errors.New("lab: HTTP clients in a namespace need Linux")
}
