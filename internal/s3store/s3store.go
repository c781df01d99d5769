// Package s3store is the shared store behind lifeos's local cache: an
// S3-compatible bucket (AWS S3, MinIO, versitygw, R2, ...) reached through
// the AWS SDK for Go v2, addressed by an URL s3://bucket/prefix.
//
// The endpoint and the credentials come from the environment, as the AWS
// tools read them: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (S3_ENDPOINT is
// also read); AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with
// AWS_SESSION_TOKEN for temporary ones; AWS_REGION or AWS_DEFAULT_REGION.
// Credentials never appear in messages.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Store is a bucket and a key prefix in an S3-compatible service.
type Store struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	url    string // s3://bucket/prefix, for messages

	// Warn receives the one warning a store may have to give: that the
	// service ignores conditional writes. Nil discards it.
	Warn func(msg string)

	probeOnce   sync.Once
	conditional bool
}

// IsURL reports whether s names a store (s3://...).
func IsURL(s string) bool { return strings.HasPrefix(s, "s3://") }

// Open returns the store at rawURL, s3://bucket[/prefix]. It makes no
// request: a wrong endpoint or credentials show at the first one.
func Open(rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q is not a store URL: want s3://bucket/prefix", rawURL)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	endpoint, err := endpointFromEnv()
	if err != nil {
		return nil, err
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		// Self-hosted services ignore the region, and AWS redirects.
		region = "us-east-1"
	}
	client := s3.New(s3.Options{
		Region:      region,
		Credentials: aws.CredentialsProviderFunc(envCredentials),
		// Path-style addressing works with every S3-compatible service
		// (bucket names with dots, bare IP endpoints).
		UsePathStyle: endpoint != nil,
		BaseEndpoint: endpoint,
		// Checksums only where S3 requires them: many compatible services
		// do not speak the newer trailing-checksum encoding. Every object
		// is verified by its SHA-256 when read anyway.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return &Store{client: client, bucket: u.Host, prefix: prefix, url: "s3://" + u.Host + "/" + prefix}, nil
}

// envCredentials reads the keys from the environment at each signing, so
// that rotated temporary credentials are picked up.
func envCredentials(context.Context) (aws.Credentials, error) {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return aws.Credentials{}, errors.New("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Source: "environment"}, nil
}

// endpointFromEnv returns the service's URL from AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL or S3_ENDPOINT; nil for AWS S3 itself.
func endpointFromEnv() (*string, error) {
	for _, name := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT"} {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		if !strings.Contains(v, "://") {
			v = "https://" + v
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("%s=%q: want http(s)://host[:port]", name, os.Getenv(name))
		}
		return aws.String(u.Scheme + "://" + u.Host), nil
	}
	return nil, nil
}

// String returns the store's URL.
func (s *Store) String() string { return s.url }

// ErrExists is returned by a create-only Put whose key holds an object.
var ErrExists = fs.ErrExist

// status returns the HTTP status and the S3 error code of err.
func status(err error) (int, string) {
	code := 0
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		code = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return code, ae.ErrorCode()
	}
	return code, ""
}

func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	st, code := status(err)
	at := s.url + key
	switch {
	case code == "NoSuchBucket":
		return fmt.Errorf("%s %s: bucket %s does not exist (create it, or check AWS_ENDPOINT_URL)", op, at, s.bucket)
	case code == "NoSuchKey" || code == "NotFound" || st == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w", op, at, fs.ErrNotExist)
	case code == "PreconditionFailed" || st == http.StatusPreconditionFailed:
		return fmt.Errorf("%s %s: %w", op, at, ErrExists)
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || st == http.StatusForbidden:
		return fmt.Errorf("%s %s: access denied (%s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", op, at, code)
	}
	var ne *net.OpError
	if errors.As(err, &ne) { // what is wrong, without the SDK's retry story
		return fmt.Errorf("%s %s: %w", op, at, ne)
	}
	return fmt.Errorf("%s %s: %w", op, at, err)
}

// Get copies the object at key to w; an error wrapping fs.ErrNotExist
// when there is none. A failure part way leaves part of it written.
func (s *Store) Get(ctx context.Context, key string, w io.Writer) (int64, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		return 0, s.wrap("get", key, err)
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	return n, s.wrap("get", key, err)
}

// Stat returns the size of the object at key; an error wrapping
// fs.ErrNotExist when there is none.
func (s *Store) Stat(ctx context.Context, key string) (int64, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		return 0, s.wrap("stat", key, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Put stores size bytes from r at key. With ifAbsent it never replaces an
// object (If-None-Match: *) and returns an error wrapping ErrExists when
// key holds one; on a service that ignores the condition, it checks first
// and warns once that racing writers may replace each other's object.
func (s *Store) Put(ctx context.Context, key string, r io.ReadSeeker, size int64, ifAbsent bool) error {
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key), Body: r, ContentLength: aws.Int64(size),
		ContentType: aws.String("application/octet-stream")}
	if ifAbsent {
		if s.conditionalWrites(ctx) {
			in.IfNoneMatch = aws.String("*")
		} else if _, err := s.Stat(ctx, key); err == nil {
			return fmt.Errorf("put %s%s: %w", s.url, key, ErrExists)
		}
	}
	_, err := s.client.PutObject(ctx, in)
	return s.wrap("put", key, err)
}

// conditionalWrites reports whether the service honours If-None-Match: *,
// asking it once: some S3-compatible services accept the header and
// ignore it.
func (s *Store) conditionalWrites(ctx context.Context) bool {
	s.probeOnce.Do(func() {
		put := func() error {
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + "probe/if-none-match"),
				Body: strings.NewReader("probe"), ContentLength: aws.Int64(5), IfNoneMatch: aws.String("*")})
			return s.wrap("probe", "probe/if-none-match", err)
		}
		// The first put may find the key from an earlier probe; the second
		// must be refused either way.
		if err := put(); err != nil && !errors.Is(err, ErrExists) {
			s.conditional = true // unknown: the uploads will say what is wrong
			return
		}
		s.conditional = errors.Is(put(), ErrExists)
		if !s.conditional && s.Warn != nil {
			s.Warn(fmt.Sprintf("%s ignores If-None-Match: cache entries are checked before they are written, and two writers racing on one entry may replace each other's (both are valid results)", s.url))
		}
	})
	return s.conditional
}

// Remove deletes the object at key; no error when there is none.
func (s *Store) Remove(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	return s.wrap("remove", key, err)
}

// List calls fn with the key (relative to the store's prefix) and size of
// every object under prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, size int64) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(strings.TrimPrefix(aws.ToString(o.Key), s.prefix), aws.ToInt64(o.Size)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Check makes one request to say early whether the bucket can be reached:
// a clear error for a wrong endpoint, bucket or key before any work.
func (s *Store) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if st, _ := status(err); st == http.StatusNotFound {
		return fmt.Errorf("reach %s: bucket %s does not exist (create it, or check AWS_ENDPOINT_URL)", s.url, s.bucket)
	}
	return s.wrap("reach", "", err)
}
