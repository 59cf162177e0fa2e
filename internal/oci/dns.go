package oci

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// MaxDNSSearch is the largest number of search domains a resolv.conf may
// carry.
const MaxDNSSearch = 6

// DNS is the resolver configuration of a network namespace.
type DNS struct {
	Search  []string
	Servers []string
}

// DNSFromAdapters merges the DNS settings of a namespace's adapters, in
// adapter order: every DNSSuffix and DNSServerList is split on ",", each
// value trimmed and lower-cased, empty values dropped and duplicates
// removed keeping the first. More than MaxDNSSearch search domains is
// ErrTooManySearchDomains; a value with inner whitespace or control
// characters (which would inject lines into resolv.conf) is
// ErrInvalidDNSValue.
func DNSFromAdapters(adapters []prot.LCOWNetworkAdapter) (DNS, error) {
	var d DNS
	seenSearch := map[string]bool{}
	seenServer := map[string]bool{}
	for _, a := range adapters {
		var err error
		if d.Search, err = appendDNSList(d.Search, seenSearch, a.DNSSuffix); err != nil {
			return DNS{}, fmt.Errorf("adapter %s DNSSuffix: %w", a.ID, err)
		}
		if d.Servers, err = appendDNSList(d.Servers, seenServer, a.DNSServerList); err != nil {
			return DNS{}, fmt.Errorf("adapter %s DNSServerList: %w", a.ID, err)
		}
	}
	if len(d.Search) > MaxDNSSearch {
		return DNS{}, fmt.Errorf("%w: %d (at most %d)", ErrTooManySearchDomains, len(d.Search), MaxDNSSearch)
	}
	return d, nil
}

func appendDNSList(out []string, seen map[string]bool, list string) ([]string, error) {
	if list == "" {
		return out, nil
	}
	for _, v := range strings.Split(list, ",") {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" || seen[v] {
			continue
		}
		if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return nil, fmt.Errorf("%w: %q", ErrInvalidDNSValue, v)
		}
		seen[v] = true
		out = append(out, v)
	}
	return out, nil
}

// ResolvConf renders d as resolv.conf: "search a b c\n" when there are
// search domains, then "nameserver X\n" per server. An empty DNS renders
// as an empty file.
func (d DNS) ResolvConf() ([]byte, error) {
	if len(d.Search) > MaxDNSSearch {
		return nil, fmt.Errorf("%w: %d (at most %d)", ErrTooManySearchDomains, len(d.Search), MaxDNSSearch)
	}
	var b strings.Builder
	if len(d.Search) > 0 {
		b.WriteString("search " + strings.Join(d.Search, " ") + "\n")
	}
	for _, s := range d.Servers {
		b.WriteString("nameserver " + s + "\n")
	}
	return []byte(b.String()), nil
}
