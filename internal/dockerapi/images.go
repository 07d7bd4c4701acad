package dockerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/distribution/reference"
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
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("cannot pull %s: %w", ref, err)
	}
	// A reference without a tag or digest means :latest (not every tag, which an empty
	// tag would).
	tag := "latest"
	if d, ok := named.(reference.Digested); ok {
		tag = d.Digest().String()
	} else if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	resp, err := c.do(ctx, http.MethodPost, "/images/create", url.Values{"fromImage": {named.Name()}, "tag": {tag}})
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
