// Package whois maps addresses to their origin AS, prefix and AS name in
// bulk (Team Cymru bulk whois, Team Cymru DNS, offline tables), with an
// on-disk cache, and looks up reverse names.
//
// Parsers are pure functions over bytes; dialers are injected. It never
// prints or exits, and it never sends special-use addresses anywhere.
package whois
