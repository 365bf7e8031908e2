// The packed kernels alone (sy_qpack), one thread: a 1024 x 4096 matrix (random GGUF blocks, repacked) against
// 128 quantized tokens, in the matmul's order (cache tiles of about 64 KiB of rows, each meeting every group of
// NT tokens); best of 25 passes, in GMAC/s and GB/s of weights. For A/B runs of kernel changes (the numbers in
// Docs/PERFORMANCE.md); not part of CI. Scripts/bench/packed-kernel-bench.sh builds and runs it.
// usage: packed-kernel-bench TYPE ISA NT   (TYPE: 8 Q8_0, 2 Q4_0, 6 Q5_0, 20 IQ4_NL, 12 Q4_K; ISA: 0 scalar,
//        1 avx2, 2 avx512-vnni; NT: 4 for prefill, 1 for decode)
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "ckernels.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int type = argc>1? atoi(argv[1]) : SY_Q8_0;
  int isa = argc>2? atoi(argv[2]) : SY_ISA_AVX2; int NT = argc>3? atoi(argv[3]) : 4;
  int64_t rows=1024, cols=4096, T=128;
  int bb = type==SY_Q8_0?34: type==SY_Q5_0?22:18;
  size_t rb = type==SY_Q4_K ? cols/256*144 : cols/32*bb;
  uint8_t *w = malloc(rows*rb), *p = malloc(rows*rb);
  srand(1);
  for (size_t i=0;i<rows*rb;i++) w[i]=rand();
  if (type==SY_Q4_K) { for (int64_t r=0;r<rows;r++) for (int64_t b=0;b<cols/256;b++){ uint16_t h=0x2c00 + (rand()%256); memcpy(w+r*rb+b*144,&h,2); memcpy(w+r*rb+b*144+2,&h,2);} } else
  for (int64_t r=0;r<rows;r++) for (int64_t b=0;b<cols/32;b++){ uint16_t h=0x2c00 + (rand()%256); memcpy(w+r*rb+b*bb,&h,2);} 
  sy_pack4(type,w,rows,cols,p);
  float *x = malloc(T*cols*4); for (int64_t i=0;i<T*cols;i++) x[i]=(rand()/(float)RAND_MAX)-0.5f;
  int8_t *q = malloc(T*cols); float *d = malloc(T*cols/32*4); int16_t *s = malloc(T*cols/16*2);
  for (int t=0;t<T;t++) { if (type==SY_Q4_K) sy_quantize_q8k(x+t*cols, cols, q+t*cols, d+t*cols/32, s+t*cols/16); else { sy_quantize_q8(x+t*cols, cols, q+t*cols, d+t*cols/32); for (int64_t i=0;i<cols/32;i++) s[t*cols/32+i]=0; } }
  float *y = malloc(T*rows*4), o[16];
  int64_t tile = 65536/rb; tile = tile<4?4:tile/4*4;
  double best=1e9; float chk=0;   /* chk keeps the outputs alive */
  for (int rep=0;rep<25;rep++){
    double t0=now();
    for (int64_t rt=0; rt<rows; rt+=tile)
      for (int64_t tk=0; tk<(NT==4?T:T/8); tk+=NT)
        for (int64_t r=rt; r<rt+tile && r<rows; r+=4) {
          sy_qpack(isa,type,p+r*rb,cols,q+tk*cols,d+tk*cols/32,s+tk*cols/(type==SY_Q4_K?16:32),cols,NT,o);
          chk+=o[0]+o[15];
        }
    double dt=now()-t0; if(dt<best)best=dt;
  }
  double macs = (double)rows*cols*(NT==4?T:T/8); printf("type %d isa %d nt %d: %.2f GMAC/s %.2f GB/s (%.1f ms) chk %g\n",type,isa,NT,macs/best*1e-9, (double)rows*rb*(NT==4?T/4:T/8)/best*1e-9, best*1e3,chk);
  return 0;
}
