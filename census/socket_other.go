//go:build !unix

package census

func isAddrNotAvail(error) bool { return false }
