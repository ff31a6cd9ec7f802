/*
 * p11shim.c - a PKCS#11 module in front of another (SoftHSM2), for
 * test_hsm.py: a token that refuses or stalls mid-run, which SoftHSM
 * cannot do by itself.  C_GetFunctionList loads the module named by
 * TPW_P11SHIM_MODULE and hands out its function list with some entries
 * replaced: C_EncryptInit, C_DecryptInit, C_SignInit and
 * C_GetSessionInfo (the calls tpwallet makes for a seal, an open, a
 * signature in the token and its check) look for files in the directory
 * TPW_P11SHIM_DIR before forwarding:
 *   fail   answer CKR_DEVICE_ERROR;
 *   stall  wait while the file exists (at most 60 s), then forward;
 * and C_GetMechanismList leaves out CKM_EDDSA while the file no-eddsa
 * exists (a token without EdDSA).
 * Nothing here reads or prints a PIN.  Built by test_hsm.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST shim;
static CK_FUNCTION_LIST *real;

static int flag(const char *name)
{
	const char *dir = getenv("TPW_P11SHIM_DIR");
	char path[4096];

	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* CKR_OK to forward the call, or the error to answer. */
static CK_RV gate(void)
{
	struct timespec ms50 = {0, 50 * 1000 * 1000};

	for (int i = 0; i < 1200 && flag("stall"); i++)
		nanosleep(&ms50, NULL);
	return flag("fail") ? CKR_DEVICE_ERROR : CKR_OK;
}

static CK_RV shim_encrypt_init(CK_SESSION_HANDLE s, CK_MECHANISM *m,
			       CK_OBJECT_HANDLE k)
{
	CK_RV rv = gate();
	return rv != CKR_OK ? rv : real->C_EncryptInit(s, m, k);
}

static CK_RV shim_decrypt_init(CK_SESSION_HANDLE s, CK_MECHANISM *m,
			       CK_OBJECT_HANDLE k)
{
	CK_RV rv = gate();
	return rv != CKR_OK ? rv : real->C_DecryptInit(s, m, k);
}

static CK_RV shim_sign_init(CK_SESSION_HANDLE s, CK_MECHANISM *m,
			    CK_OBJECT_HANDLE k)
{
	CK_RV rv = gate();
	return rv != CKR_OK ? rv : real->C_SignInit(s, m, k);
}

static CK_RV shim_mechanisms(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list,
			     CK_ULONG *n)
{
	CK_RV rv = real->C_GetMechanismList(slot, list, n);
	CK_ULONG j = 0;

	if (rv != CKR_OK || !list || !flag("no-eddsa"))
		return rv;
	for (CK_ULONG i = 0; i < *n; i++)
		if (list[i] != CKM_EDDSA)
			list[j++] = list[i];
	*n = j;
	return CKR_OK;
}

static CK_RV shim_session_info(CK_SESSION_HANDLE s, CK_SESSION_INFO *info)
{
	CK_RV rv = gate();
	return rv != CKR_OK ? rv : real->C_GetSessionInfo(s, info);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out)
{
	const char *path = getenv("TPW_P11SHIM_MODULE");
	CK_RV (*get)(CK_FUNCTION_LIST **);
	void *dl;

	if (!out || !path)
		return CKR_ARGUMENTS_BAD;
	if (!real) {
		dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!dl)
			return CKR_GENERAL_ERROR;
		*(void **)&get = dlsym(dl, "C_GetFunctionList");
		if (!get || get(&real) != CKR_OK)
			return CKR_GENERAL_ERROR;
		shim = *real;
		shim.C_EncryptInit = shim_encrypt_init;
		shim.C_DecryptInit = shim_decrypt_init;
		shim.C_GetSessionInfo = shim_session_info;
		shim.C_SignInit = shim_sign_init;
		shim.C_GetMechanismList = shim_mechanisms;
	}
	*out = &shim;
	return CKR_OK;
}
