package bench

import (
	"bytes"
	"errors"
)

// maxResponseHeader bounds the header of an answer the spin engine reads.
const maxResponseHeader = 64 << 10

// maxResponseBody bounds the Content-Length it accepts.
const maxResponseBody = 64 << 20

// responseSize returns the length of the HTTP/1.1 response at the start of
// b when b holds all of it, 0 when more bytes are needed, or an error when
// its framing is not one the spin engine reads: it needs a Content-Length
// (or a status without a body), as every server it measures sends, and
// refuses chunked or close-delimited bodies rather than guess.
func responseSize(b []byte) (int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxResponseHeader {
			return 0, errors.New("response header too long")
		}
		return 0, nil
	}
	if end > maxResponseHeader {
		return 0, errors.New("response header too long")
	}
	head := b[:end+2]
	// Lines end in CRLF only: fasthttp ends a line at a bare LF too, so a
	// bare LF (or CR) would make the two disagree on where the header ends.
	if crlf := bytes.Count(head, []byte("\r\n")); bytes.Count(head, []byte{'\n'}) != crlf || bytes.Count(head, []byte{'\r'}) != crlf {
		return 0, errors.New("bare CR or LF in the response header")
	}
	eol := bytes.Index(head, []byte("\r\n"))
	status := head[:eol]
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) || status[8] != ' ' {
		return 0, errors.New("malformed status line")
	}
	code := 0
	for _, c := range status[9:12] {
		if c < '0' || c > '9' {
			return 0, errors.New("malformed status code")
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 {
		return 0, errors.New("interim (1xx) responses are not supported")
	}
	length := -1
	for rest := head[eol+2:]; len(rest) > 0; {
		eol := bytes.Index(rest, []byte("\r\n"))
		line := rest[:eol]
		rest = rest[eol+2:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, errors.New("malformed header line")
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, errors.New("Transfer-Encoding is not supported")
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseLength(value)
			if !ok || length >= 0 && n != length {
				return 0, errors.New("malformed or conflicting Content-Length")
			}
			length = n
		}
	}
	switch {
	case code == 204 || code == 304:
		length = 0
	case length < 0:
		return 0, errors.New("no Content-Length")
	}
	if size := end + 4 + length; len(b) >= size {
		return size, nil
	}
	return 0, nil
}

func parseLength(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= maxResponseBody
}
