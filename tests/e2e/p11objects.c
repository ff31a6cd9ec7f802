/*
 * p11objects.c - a small PKCS#11 client for test_hsm.py, which has no
 * pkcs11-tool: lists the key pairs of a token, or deletes the objects
 * labelled LABEL (a signing key "lost" from the token).
 *   p11objects MODULE TOKEN list
 *   p11objects MODULE TOKEN delete LABEL
 * The user PIN comes from the environment (TPW_P11_PIN), never from an
 * argument, and is not printed.  list prints one line per private or
 * public key: "private|public LABEL ID-HEX sensitive=0|1
 * extractable=0|1 token=0|1", and for a public key " point=HEX" (its
 * CKA_EC_POINT as the token gives it).  Built by test_hsm.py.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *f;

static CK_SESSION_HANDLE open_token(const char *label)
{
	CK_SLOT_ID slots[32];
	CK_ULONG n = 32;
	CK_SESSION_HANDLE s;
	const char *pin = getenv("TPW_P11_PIN");

	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || !pin)
		exit(2);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		size_t l = strlen(label);
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    memcmp(ti.label, label, l) != 0 ||
		    (l < 32 && ti.label[l] != ' '))
			continue;
		if (f->C_OpenSession(slots[i],
				     CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				     NULL, &s) != CKR_OK ||
		    f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)) !=
			    CKR_OK)
			exit(3);
		return s;
	}
	exit(4);
}

static void list(CK_SESSION_HANDLE s)
{
	static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY,
						  CKO_PUBLIC_KEY};
	for (int c = 0; c < 2; c++) {
		CK_OBJECT_CLASS cls = classes[c];
		CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
		CK_OBJECT_HANDLE h[64];
		CK_ULONG n = 0;
		f->C_FindObjectsInit(s, &t, 1);
		f->C_FindObjects(s, h, 64, &n);
		f->C_FindObjectsFinal(s);
		for (CK_ULONG i = 0; i < n; i++) {
			char label[65] = "";
			unsigned char id[64];
			CK_BBOOL sens = 0, ext = 0, tok = 0;
			CK_ATTRIBUTE a[] = {
				{CKA_LABEL, label, sizeof(label) - 1},
				{CKA_ID, id, sizeof(id)},
				{CKA_SENSITIVE, &sens, sizeof(sens)},
				{CKA_EXTRACTABLE, &ext, sizeof(ext)},
				{CKA_TOKEN, &tok, sizeof(tok)},
			};
			/* public keys have no CKA_SENSITIVE: ask one by one */
			for (int k = 0; k < 5; k++)
				if (f->C_GetAttributeValue(s, h[i], &a[k], 1) !=
				    CKR_OK)
					a[k].ulValueLen = 0;
			label[a[0].ulValueLen < 64 ? a[0].ulValueLen : 64] = 0;
			printf("%s %s ", c == 0 ? "private" : "public", label);
			for (CK_ULONG k = 0; k < a[1].ulValueLen && k < 64; k++)
				printf("%02x", id[k]);
			printf(" sensitive=%d extractable=%d token=%d",
			       sens ? 1 : 0, ext ? 1 : 0, tok ? 1 : 0);
			unsigned char point[80];
			CK_ATTRIBUTE pa = {CKA_EC_POINT, point, sizeof(point)};
			if (c == 1 &&
			    f->C_GetAttributeValue(s, h[i], &pa, 1) == CKR_OK) {
				printf(" point=");
				for (CK_ULONG k = 0; k < pa.ulValueLen; k++)
					printf("%02x", point[k]);
			}
			printf("\n");
		}
	}
}

static void delete (CK_SESSION_HANDLE s, const char *label)
{
	CK_ATTRIBUTE t = {CKA_LABEL, (void *)label, strlen(label)};
	CK_OBJECT_HANDLE h[16];
	CK_ULONG n = 0;

	f->C_FindObjectsInit(s, &t, 1);
	f->C_FindObjects(s, h, 16, &n);
	f->C_FindObjectsFinal(s);
	for (CK_ULONG i = 0; i < n; i++)
		if (f->C_DestroyObject(s, h[i]) != CKR_OK)
			exit(5);
	printf("deleted %lu\n", (unsigned long)n);
}

int main(int argc, char **argv)
{
	CK_RV (*get)(CK_FUNCTION_LIST **);
	void *dl;

	if (argc < 4)
		return 2;
	dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		return 2;
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (!get || get(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK)
		return 2;
	CK_SESSION_HANDLE s = open_token(argv[2]);
	if (strcmp(argv[3], "list") == 0)
		list(s);
	else if (strcmp(argv[3], "delete") == 0 && argc == 5)
		delete (s, argv[4]);
	else
		return 2;
	f->C_Logout(s);
	f->C_CloseSession(s);
	f->C_Finalize(NULL);
	return 0;
}
