// Package whoistest serves the ASN lookup protocols for tests and labs: a
// Team Cymru style bulk whois server (with hostile modes that misbehave on
// purpose), a DNS handler for the origin/origin6/AS TXT zones, and writers
// for offline tables built from the same rows.
//
// It listens only where it is told (loopback by default) and never talks
// to anything else.
package whoistest
