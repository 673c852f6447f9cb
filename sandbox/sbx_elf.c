/*
 * DT_NEEDED of a shared object, so the template root can hold only the
 * libraries that Python's extension modules actually link against.
 *
 * Runs in the zygote, as root, on root-owned files of the installed system
 * (the stdlib and site directories): trusted input. The parser still checks
 * every offset against the file size, so a damaged file gives an error, not
 * a crash in a privileged process.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbx_int.h"

/* No extension module or library comes near this; a larger file is not ours. */
#define SBX_ELF_MAX_SIZE	(1ull << 30)

/* 1 if [off, off + len) lies inside a file of size sz. */
static int
sbx_elf_in(uint64_t off, uint64_t len, uint64_t sz)
{
	return off <= sz && len <= sz - off;
}

static int
sbx_elf_walk(const unsigned char *m, uint64_t sz, const char *path,
    sbx_elf_needed_cb cb, void *arg, char *err, size_t errlen)
{
	const Elf64_Ehdr	*eh = (const void *)m;
	const Elf64_Shdr	*sh, *dyn = NULL, *str;
	const Elf64_Dyn		*d;
	uint64_t		 i, n;

	if (sz < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB) {
		sbx_errf(err, errlen, 0, "sbx_elf: %s: not a 64-bit ELF file", path);
		return -1;
	}
	/* A file without section headers has nothing we can read cheaply. */
	if (eh->e_shoff == 0 || eh->e_shnum == 0)
		return 0;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    !sbx_elf_in(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), sz) ||
	    eh->e_shoff % _Alignof(Elf64_Shdr) != 0) {
		sbx_errf(err, errlen, 0, "sbx_elf: %s: bad section table", path);
		return -1;
	}
	sh = (const void *)(m + eh->e_shoff);
	for (i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_type == SHT_DYNAMIC) {
			dyn = &sh[i];
			break;
		}
	if (dyn == NULL)
		return 0;
	if (dyn->sh_link >= eh->e_shnum ||
	    !sbx_elf_in(dyn->sh_offset, dyn->sh_size, sz) ||
	    dyn->sh_offset % _Alignof(Elf64_Dyn) != 0) {
		sbx_errf(err, errlen, 0, "sbx_elf: %s: bad dynamic section", path);
		return -1;
	}
	str = &sh[dyn->sh_link];
	if (str->sh_type != SHT_STRTAB || str->sh_size == 0 ||
	    !sbx_elf_in(str->sh_offset, str->sh_size, sz) ||
	    m[str->sh_offset + str->sh_size - 1] != '\0') {
		sbx_errf(err, errlen, 0, "sbx_elf: %s: bad dynamic string table", path);
		return -1;
	}
	d = (const void *)(m + dyn->sh_offset);
	n = dyn->sh_size / sizeof(*d);
	for (i = 0; i < n && d[i].d_tag != DT_NULL; i++) {
		if (d[i].d_tag != DT_NEEDED)
			continue;
		if (d[i].d_un.d_val >= str->sh_size) {
			sbx_errf(err, errlen, 0, "sbx_elf: %s: bad DT_NEEDED", path);
			return -1;
		}
		/* NUL-terminated: the table's last byte was checked above. */
		if (cb((const char *)m + str->sh_offset + d[i].d_un.d_val, arg) == -1) {
			sbx_errf(err, errlen, 0, "sbx_elf: %s: cannot expose %s", path,
			    (const char *)m + str->sh_offset + d[i].d_un.d_val);
			return -1;
		}
	}
	return 0;
}

int
sbx_elf_needed(const char *path, sbx_elf_needed_cb cb, void *arg,
    char *err, size_t errlen)
{
	struct stat	 st;
	void		*m;
	int		 fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		sbx_errf(err, errlen, errno, "sbx_elf: open %s", path);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		sbx_errf(err, errlen, errno, "sbx_elf: fstat %s", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) ||
	    (unsigned long long)st.st_size > SBX_ELF_MAX_SIZE) {
		sbx_errf(err, errlen, 0, "sbx_elf: %s: not a regular file of sane size",
		    path);
		close(fd);
		return -1;
	}
	if (st.st_size == 0) {
		close(fd);
		return 0;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		sbx_errf(err, errlen, errno, "sbx_elf: mmap %s", path);
		return -1;
	}
	rc = sbx_elf_walk(m, (uint64_t)st.st_size, path, cb, arg, err, errlen);
	munmap(m, (size_t)st.st_size);
	return rc;
}
