package proxy

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// errUnknownEncoding is a Content-Encoding cloak cannot look inside.
// The standard library has gzip and deflate; br and zstd would each need a
// dependency, and a body cloak cannot read is refused rather than passed
// on unseen.
var errUnknownEncoding = errors.New("unknown content encoding")

// contentCodings lists a message's content codings in the order they were
// applied (RFC 9110 8.4), without identity.
func contentCodings(h http.Header) ([]string, error) {
	var out []string
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			switch c {
			case "", "identity":
			case "gzip", "x-gzip", "deflate":
				out = append(out, c)
			default:
				return nil, fmt.Errorf("%w %q", errUnknownEncoding, c)
			}
		}
	}
	return out, nil
}

// decodeCodings undoes the codings, last applied first. Decoders start on
// the first read, so an empty body decodes to nothing instead of failing.
func decodeCodings(codings []string, r io.Reader) io.Reader {
	for i := len(codings) - 1; i >= 0; i-- {
		r = &lazyDecoder{src: r, coding: codings[i]}
	}
	return r
}

type lazyDecoder struct {
	src    io.Reader
	coding string
	r      io.Reader
}

func (d *lazyDecoder) Read(p []byte) (int, error) {
	if d.r == nil {
		br := bufio.NewReader(d.src)
		if _, err := br.Peek(1); err == io.EOF {
			return 0, io.EOF
		}
		var err error
		switch d.coding {
		case "gzip", "x-gzip":
			d.r, err = gzip.NewReader(br)
		default:
			// "deflate" is zlib-wrapped (RFC 9110 8.4.1.2), but some
			// clients send a raw deflate stream; tell them apart by the
			// zlib header (RFC 1950 2.2).
			if h, _ := br.Peek(2); len(h) == 2 && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
				d.r, err = zlib.NewReader(br)
			} else {
				d.r = flate.NewReader(br)
			}
		}
		if err != nil {
			return 0, fmt.Errorf("decoding %s body: %w", d.coding, err)
		}
	}
	return d.r.Read(p)
}

// encodeCodings applies the codings again, in order, as the bytes are read.
func encodeCodings(codings []string, r io.Reader) io.Reader {
	for _, c := range codings {
		r = newEncodeReader(r, c)
	}
	return r
}

// encodeReader compresses as it is read, holding only what one chunk of
// input compresses to.
type encodeReader struct {
	src   io.Reader
	buf   bytes.Buffer
	w     io.WriteCloser
	chunk []byte
	err   error
}

func newEncodeReader(src io.Reader, coding string) *encodeReader {
	e := &encodeReader{src: src, chunk: make([]byte, replaceChunk)}
	if coding == "deflate" {
		e.w = zlib.NewWriter(&e.buf)
	} else {
		e.w = gzip.NewWriter(&e.buf)
	}
	return e
}

func (e *encodeReader) Read(p []byte) (int, error) {
	for e.buf.Len() == 0 {
		if e.err != nil {
			return 0, e.err
		}
		n, err := e.src.Read(e.chunk)
		if n > 0 {
			if _, werr := e.w.Write(e.chunk[:n]); werr != nil {
				e.err = werr
				continue
			}
		}
		switch {
		case err == io.EOF:
			e.err = io.EOF
			if cerr := e.w.Close(); cerr != nil {
				e.err = cerr
			}
		case err != nil:
			e.err = err
		}
	}
	return e.buf.Read(p)
}
