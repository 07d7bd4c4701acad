package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ImageInfo is the part of GET /images/{name}/json that is read.
type ImageInfo struct {
	ID string `json:"Id"`
}

// ImageInspect returns the local image ref (a reference or an ID); a missing image is an
// error for which IsNotFound is true.
func (c *Client) ImageInspect(ctx context.Context, ref string) (ImageInfo, error) {
	var info ImageInfo
	if ref == "" {
		return info, fmt.Errorf("cannot inspect image %q: %w", ref, &Error{StatusCode: http.StatusNotFound, Message: "no image reference"})
	}
	if err := c.getJSON(ctx, "/images/"+ref+"/json", nil, &info); err != nil {
		return ImageInfo{}, fmt.Errorf("cannot inspect image %s: %w", ref, err)
	}
	return info, nil
}

// ImagePull pulls ref from its registry (without credentials) and returns when the pull
// has ended. The engine answers 200 at once and reports a failed pull in its progress
// stream, so the stream is read to the end and its first error returned.
func (c *Client) ImagePull(ctx context.Context, ref string) error {
	name, tag := splitRef(ref)
	resp, err := c.do(ctx, http.MethodPost, "/images/create", url.Values{"fromImage": {name}, "tag": {tag}})
	if err != nil {
		return fmt.Errorf("cannot pull %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if err := pullError(resp.Body); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("cannot pull %s: %w", ref, err)
	}
	return nil
}

// splitRef splits an image reference into the repository and the tag or digest that
// /images/create takes apart, as the SDK did (it also normalized the name, which the
// engine does anyway); a reference with neither means :latest, not every tag,
// which an empty tag would pull. The engine parses and checks both. (Not
// distribution/reference: its regular expressions cost every announcer, which never
// pulls, about 0.4 MB and most of a millisecond at start.)
func splitRef(ref string) (name, tag string) {
	name, digest, hasDigest := strings.Cut(ref, "@")
	tag = "latest"
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	if hasDigest {
		tag = digest // the digest wins over a tag, as with docker pull
	}
	return name, tag
}

// pullError reads a pull's progress (one JSON message after another) and returns the
// first error in it.
func pullError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}
