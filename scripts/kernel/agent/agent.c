// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * smmu-conform guest agent (docs/kernel.md, "Agent protocol").
 *
 * Runs as a static binary in the guest's initramfs. It opens the vfio cdevs of the edu
 * functions that init bound to vfio-pci, binds them to one iommufd, reports the host SMMU's ID
 * registers (IOMMU_GET_HW_INFO), and then serves the host over the virtio-serial port named
 * "smmu-conform.agent": `setup` builds IOAS -> S2 parent HWPT -> vIOMMU -> vDEVICE -> nested
 * HWPT -> attach, `batch`/`raw` issue one IOMMU_HWPT_INVALIDATE each, `quit` ends.
 *
 * The uAPI structs come from the built kernel's own headers (build.sh compiles this file
 * against `make headers_install` of the source it built), so their layout is the real one.
 *
 * Every line to the host is written with a single write(): a blocking write on a virtio port
 * returns only after QEMU took the buffer, which is what makes the `result` line a fence in
 * QEMU's trace (virtio_console_flush_buf after the ioctl's host-queue trace lines).
 * Diagnostics go to stderr (the serial console), never to the port.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

#define PORT_NAME "smmu-conform.agent"
#define MAX_DEVS 8
/* raw: never allocate more than this to pad a short buffer up to entry_len * entry_num. */
#define RAW_PAD_LIMIT (16u << 20)

/* STE word 0 fields (SMMUv3 spec 5.2): V is bit 0, Config bits [3:1], S1ContextPtr [51:6]. */
#define STE0_V 0x1ull
#define STE0_CFG_BYPASS (0x4ull << 1)
#define STE0_CFG_S1_TRANS (0x5ull << 1)
/* A dummy CD table address (an IPA in the empty IOAS): nothing ever walks it, since the edu
 * functions do no DMA; the kernel only needs a well-formed S1 STE to nest. */
#define DUMMY_S1_CONTEXT_PTR 0x40000000ull

struct dev {
	char bdf[NAME_MAX + 1];
	int fd;
	uint32_t dev_id;
	uint32_t vdev_id;
	uint32_t hwpt_id;
};

static int port_fd = -1;
static int iommufd = -1;
static struct dev devs[MAX_DEVS];
static int ndevs;
static uint32_t viommu_id; /* 0 until setup succeeded: the kernel never hands out id 0 */
static int setup_done;

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("agent: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* One line, one write(): see the header comment for why. */
static int send_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int send_line(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int len;
	ssize_t w;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(buf) - 1) {
		diag("line too long");
		return -1;
	}
	buf[len++] = '\n';
	if (port_fd < 0) {
		fwrite(buf, 1, len, stderr);
		return 0;
	}
	for (int off = 0; off < len;) {
		w = write(port_fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			diag("write to port: %s", w < 0 ? strerror(errno) : "short write");
			return -1;
		}
		off += w;
	}
	return 0;
}

/* `error <what> errno=<n>` on the port (and the console), then exit nonzero: init powers off. */
static void __attribute__((noreturn)) fail(const char *what, int err)
{
	diag("error %s errno=%d (%s)", what, err, strerror(err));
	if (port_fd >= 0)
		send_line("error %s errno=%d", what, err);
	exit(1);
}

static int read_small_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

/* The port's /dev node: devtmpfs makes /dev/vportNpM but no /dev/virtio-ports/ names (that is
 * udev's job), so match the name in sysfs. The name arrives from QEMU asynchronously after the
 * port is added; allow 30 s, since a heavily loaded host can slow a TCG guest a lot. */
static void open_port(void)
{
	char path[300], name[128];

	for (int tries = 0; tries < 300; tries++) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *e;

		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
			if (read_small_file(path, name, sizeof(name)) || strcmp(name, PORT_NAME))
				continue;
			snprintf(path, sizeof(path), "/dev/%s", e->d_name);
			port_fd = open(path, O_RDWR | O_CLOEXEC);
			if (port_fd < 0) {
				int err = errno;

				closedir(d);
				fail("open-port", err);
			}
			closedir(d);
			diag("port %s", path);
			return;
		}
		if (d)
			closedir(d);
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fail("no-port", ENODEV);
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(((const struct dev *)a)->bdf, ((const struct dev *)b)->bdf);
}

/* Every PCI function with a vfio cdev (init bound only the edu functions to vfio-pci),
 * in BDF order, so that device <i> is stable across boots. */
static void find_devices(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	if (!d)
		fail("opendir-pci", errno);
	while ((e = readdir(d))) {
		char path[300];
		DIR *v;
		struct dirent *ve;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", e->d_name);
		v = opendir(path);
		if (!v)
			continue;
		while ((ve = readdir(v))) {
			if (strncmp(ve->d_name, "vfio", 4))
				continue;
			if (ndevs == MAX_DEVS) {
				closedir(v);
				closedir(d);
				fail("too-many-devices", E2BIG);
			}
			snprintf(devs[ndevs].bdf, sizeof(devs[ndevs].bdf), "%s", e->d_name);
			snprintf(path, sizeof(path), "/dev/vfio/devices/%s", ve->d_name);
			devs[ndevs].fd = open(path, O_RDWR | O_CLOEXEC);
			if (devs[ndevs].fd < 0) {
				int err = errno;

				diag("open %s: %s", path, strerror(err));
				closedir(v);
				closedir(d);
				fail("open-vfio-cdev", err);
			}
			diag("device %s -> %s", devs[ndevs].bdf, path);
			ndevs++;
			break;
		}
		closedir(v);
	}
	closedir(d);
	if (!ndevs)
		fail("no-vfio-device", ENODEV);
	qsort(devs, ndevs, sizeof(devs[0]), cmp_bdf);
}

static void bind_devices(void)
{
	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (iommufd < 0)
		fail("open-iommu", errno);
	for (int i = 0; i < ndevs; i++) {
		struct vfio_device_bind_iommufd bind = {
			.argsz = sizeof(bind),
			.iommufd = iommufd,
		};

		if (ioctl(devs[i].fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
			fail("bind-iommufd", errno);
		devs[i].dev_id = bind.out_devid;
	}
}

static void send_hwinfo(void)
{
	struct iommu_hw_info_arm_smmuv3 arm;
	struct iommu_hw_info info;

	memset(&arm, 0, sizeof(arm));
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	info.dev_id = devs[0].dev_id;
	info.data_len = sizeof(arm);
	info.data_uptr = (uintptr_t)&arm;
	if (ioctl(iommufd, IOMMU_GET_HW_INFO, &info))
		fail("get-hw-info", errno);
	if (info.out_data_type != IOMMU_HW_INFO_TYPE_ARM_SMMUV3)
		fail("hw-info-type", EPROTO);
	if (send_line("hwinfo idr0=0x%x idr1=0x%x idr2=0x%x idr3=0x%x idr4=0x%x idr5=0x%x "
		      "iidr=0x%x aidr=0x%x",
		      arm.idr[0], arm.idr[1], arm.idr[2], arm.idr[3], arm.idr[4], arm.idr[5],
		      arm.iidr, arm.aidr))
		fail("write-port", EIO);
}

static int alloc_nested(struct dev *dv, uint64_t ste0)
{
	struct iommu_hwpt_arm_smmuv3 ste;
	struct iommu_hwpt_alloc alloc;

	memset(&ste, 0, sizeof(ste));
	ste.ste[0] = htole64(ste0);
	memset(&alloc, 0, sizeof(alloc));
	alloc.size = sizeof(alloc);
	alloc.dev_id = dv->dev_id;
	alloc.pt_id = viommu_id;
	alloc.data_type = IOMMU_HWPT_DATA_ARM_SMMUV3;
	alloc.data_len = sizeof(ste);
	alloc.data_uptr = (uintptr_t)&ste;
	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &alloc))
		return -1;
	dv->hwpt_id = alloc.out_hwpt_id;
	return 0;
}

static int attach(struct dev *dv)
{
	struct vfio_device_attach_iommufd_pt at = {
		.argsz = sizeof(at),
		.pt_id = dv->hwpt_id,
	};

	return ioctl(dv->fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at);
}

static void destroy(uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	if (ioctl(iommufd, IOMMU_DESTROY, &d))
		diag("destroy %u: %s", id, strerror(errno));
}

static int setup_err(const char *step, int err)
{
	diag("setup failed at %s: %s", step, strerror(err));
	return send_line("setup err %s errno=%d %s", step, err, strerror(err));
}

/* `setup vsid=<hex>[,<hex>...]`: one vSID per device, in device order. */
static int do_setup(char *args)
{
	uint64_t vsid[MAX_DEVS];
	int n = 0;
	char *p, *end;
	char step[32];

	if (setup_done)
		return setup_err("twice", EBUSY);
	if (strncmp(args, "vsid=", 5))
		return setup_err("parse", EINVAL);
	p = args + 5;
	for (;;) {
		errno = 0;
		if (n == MAX_DEVS)
			return setup_err("parse", E2BIG);
		vsid[n] = strtoull(p, &end, 16);
		if (errno || end == p)
			return setup_err("parse", EINVAL);
		n++;
		if (*end == ',') {
			p = end + 1;
			continue;
		}
		if (*end != '\0')
			return setup_err("parse", EINVAL);
		break;
	}
	if (n != ndevs)
		return setup_err("vsid-count", EINVAL);

	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &ioas))
		return setup_err("ioas", errno);

	struct iommu_hwpt_alloc s2;
	memset(&s2, 0, sizeof(s2));
	s2.size = sizeof(s2);
	s2.flags = IOMMU_HWPT_ALLOC_NEST_PARENT;
	s2.dev_id = devs[0].dev_id;
	s2.pt_id = ioas.out_ioas_id;
	s2.data_type = IOMMU_HWPT_DATA_NONE;
	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &s2))
		return setup_err("s2", errno);

	struct iommu_viommu_alloc va;
	memset(&va, 0, sizeof(va));
	va.size = sizeof(va);
	va.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3;
	va.dev_id = devs[0].dev_id;
	va.hwpt_id = s2.out_hwpt_id;
	if (ioctl(iommufd, IOMMU_VIOMMU_ALLOC, &va))
		return setup_err("viommu", errno);
	viommu_id = va.out_viommu_id;

	for (int i = 0; i < ndevs; i++) {
		struct dev *dv = &devs[i];
		struct iommu_vdevice_alloc vd;

		memset(&vd, 0, sizeof(vd));
		vd.size = sizeof(vd);
		vd.viommu_id = viommu_id;
		vd.dev_id = dv->dev_id;
		vd.virt_id = vsid[i];
		if (ioctl(iommufd, IOMMU_VDEVICE_ALLOC, &vd)) {
			snprintf(step, sizeof(step), "vdevice%d", i);
			return setup_err(step, errno);
		}
		dv->vdev_id = vd.out_vdevice_id;

		/* A stage-1 vSTE exercises the real nested configuration; if the kernel refuses it
		 * (allocation or attach), a bypass vSTE still nests the device under the vIOMMU,
		 * which is all the invalidation path needs. */
		const char *mode = "s1";
		int err = 0;
		if (alloc_nested(dv, STE0_V | STE0_CFG_S1_TRANS | DUMMY_S1_CONTEXT_PTR)) {
			err = errno;
			snprintf(step, sizeof(step), "nested%d", i);
		} else if (attach(dv)) {
			err = errno;
			snprintf(step, sizeof(step), "attach%d", i);
			destroy(dv->hwpt_id);
		}
		if (err) {
			diag("device %d: S1 vSTE refused at %s (%s), trying bypass", i, step,
			     strerror(err));
			mode = "bypass";
			if (alloc_nested(dv, STE0_V | STE0_CFG_BYPASS)) {
				snprintf(step, sizeof(step), "nested%d", i);
				return setup_err(step, errno);
			}
			if (attach(dv)) {
				snprintf(step, sizeof(step), "attach%d", i);
				return setup_err(step, errno);
			}
		}
		diag("device %d %s: dev_id=%u vsid=0x%" PRIx64 " vdevice=%u nested hwpt=%u (%s)", i,
		     dv->bdf, dv->dev_id, vsid[i], dv->vdev_id, dv->hwpt_id, mode);
	}
	setup_done = 1;
	diag("setup ok: ioas=%u s2=%u viommu=%u", ioas.out_ioas_id, s2.out_hwpt_id, viommu_id);
	return send_line("setup ok viommu=%u", viommu_id);
}

/* One IOMMU_HWPT_INVALIDATE on the vIOMMU; the answer is the fence. */
static int invalidate(void *data, uint32_t entry_len, uint32_t entry_num)
{
	struct iommu_hwpt_invalidate inv;
	int rc, err;

	memset(&inv, 0, sizeof(inv));
	inv.size = sizeof(inv);
	inv.hwpt_id = viommu_id;
	inv.data_uptr = (uintptr_t)data;
	inv.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3;
	inv.entry_len = entry_len;
	inv.entry_num = entry_num;
	rc = ioctl(iommufd, IOMMU_HWPT_INVALIDATE, &inv);
	err = rc ? errno : 0;
	return send_line("result rc=%d errno=%d entry_num=%u", rc, err, inv.entry_num);
}

static int parse_u64_hex(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 16)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int c = s[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* `batch <n> <w0>:<w1> ...` */
static void do_batch(char *args)
{
	char *save = NULL, *tok;
	uint32_t n;
	uint64_t *cmds;
	uint64_t dummy[2] = { 0, 0 };
	uint32_t got = 0;

	tok = strtok_r(args, " ", &save);
	if (!tok || parse_u32(tok, &n))
		fail("parse-batch", EINVAL);
	cmds = n ? calloc(n, 2 * sizeof(uint64_t)) : dummy;
	if (!cmds)
		fail("alloc-batch", ENOMEM);
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *colon = strchr(tok, ':');
		uint64_t w0, w1;

		if (got == n || !colon || parse_u64_hex(tok, colon - tok, &w0) ||
		    parse_u64_hex(colon + 1, strlen(colon + 1), &w1))
			fail("parse-batch", EINVAL);
		cmds[2 * got] = htole64(w0);
		cmds[2 * got + 1] = htole64(w1);
		got++;
	}
	if (got != n)
		fail("parse-batch", EINVAL);
	if (invalidate(cmds, 16, n))
		fail("write-port", EIO);
	if (cmds != dummy)
		free(cmds);
}

/* `raw <entry_len> <entry_num> [<hexbytes>]`: the bytes as given, zero-padded up to
 * entry_len * entry_num (when that is at most RAW_PAD_LIMIT) so the kernel never reads past
 * the buffer into unrelated memory for a well-formed count. */
static void do_raw(char *args)
{
	char *save = NULL, *tok, *hex;
	uint32_t entry_len, entry_num;
	size_t hexlen, nbytes, size;
	unsigned char *buf;

	tok = strtok_r(args, " ", &save);
	if (!tok || parse_u32(tok, &entry_len))
		fail("parse-raw", EINVAL);
	tok = strtok_r(NULL, " ", &save);
	if (!tok || parse_u32(tok, &entry_num))
		fail("parse-raw", EINVAL);
	hex = strtok_r(NULL, " ", &save);
	if (strtok_r(NULL, " ", &save))
		fail("parse-raw", EINVAL);
	hexlen = hex ? strlen(hex) : 0;
	if (hexlen % 2)
		fail("parse-raw", EINVAL);
	nbytes = hexlen / 2;
	size = nbytes;
	if ((uint64_t)entry_len * entry_num <= RAW_PAD_LIMIT &&
	    (size_t)entry_len * entry_num > size)
		size = (size_t)entry_len * entry_num;
	buf = calloc(size ? size : 1, 1);
	if (!buf)
		fail("alloc-raw", ENOMEM);
	for (size_t i = 0; i < nbytes; i++) {
		uint64_t b;

		if (parse_u64_hex(hex + 2 * i, 2, &b))
			fail("parse-raw", EINVAL);
		buf[i] = (unsigned char)b;
	}
	if (invalidate(buf, entry_len, entry_num))
		fail("write-port", EIO);
	free(buf);
}

/* Lines can be megabytes long (a batch of many commands): grow the buffer as needed. */
static char *rbuf;
static size_t rcap, rlen, rstart;

static char *read_line(void)
{
	for (;;) {
		char *nl = memchr(rbuf + rstart, '\n', rlen - rstart);

		if (nl) {
			char *line = rbuf + rstart;

			*nl = '\0';
			rstart = nl + 1 - rbuf;
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			return line;
		}
		if (rstart) {
			memmove(rbuf, rbuf + rstart, rlen - rstart);
			rlen -= rstart;
			rstart = 0;
		}
		if (rcap - rlen < 65536) {
			size_t ncap = rcap ? rcap * 2 : 1 << 20;
			char *n = realloc(rbuf, ncap);

			if (!n)
				fail("alloc-line", ENOMEM);
			rbuf = n;
			rcap = ncap;
		}
		ssize_t r = read(port_fd, rbuf + rlen, rcap - rlen - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("read-port", errno);
		if (r == 0) {
			/* The host closed its end: nobody is left to answer to. */
			diag("host disconnected");
			fail("port-eof", EPIPE);
		}
		rlen += r;
	}
}

int main(void)
{
	setvbuf(stderr, NULL, _IONBF, 0);
	open_port();
	/* hello first: this blocking write waits until the host has connected to the port. */
	if (send_line("hello 1"))
		fail("write-port", EIO);
	find_devices();
	bind_devices();
	send_hwinfo();
	for (int i = 0; i < ndevs; i++)
		if (send_line("device %d bdf=%s", i, devs[i].bdf))
			fail("write-port", EIO);
	if (send_line("ready"))
		fail("write-port", EIO);

	for (;;) {
		char *line = read_line();
		char *sp = strchr(line, ' ');
		char *args = sp ? sp + 1 : line + strlen(line);

		if (sp)
			*sp = '\0';
		if (!strcmp(line, "batch")) {
			do_batch(args);
		} else if (!strcmp(line, "setup")) {
			if (do_setup(args))
				fail("write-port", EIO);
		} else if (!strcmp(line, "raw")) {
			do_raw(args);
		} else if (!strcmp(line, "quit")) {
			diag("quit");
			return 0;
		} else if (line[0] == '\0' && !sp) {
			continue; /* an empty line is harmless */
		} else {
			diag("unknown command '%s'", line);
			fail("unknown-command", EINVAL);
		}
	}
}
