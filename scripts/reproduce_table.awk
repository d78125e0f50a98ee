# The markdown tables of scripts/reproduce.sh: mean ± sample standard deviation over seeds beside the paper.
#
#   awk -v kind=TABLE -f reproduce_table.awk FS=, SEEDS_CSV FS='|' ROWS [FS=, TASA_CSV]
#
# SEEDS_CSV: row,preset,seed,natural,fgsm,pgd (one line per run). ROWS: the table's rows from
# configs/paper/tables.csv as row|label|preset|baseline|paper natural|paper FGSM|paper PGD|paper TASA layer 5.
# TASA_CSV (kind tasa): row,seed,layer_index,layer,tasa_clean,tasa_adv,abs_diff.
# The "vs baseline" columns give our difference to the baseline row ± its standard error
# (sqrt(s1²/n1 + s2²/n2)), the paper's difference, and whether the two point the same way; a difference within
# two standard errors is called "within noise", whatever its sign.

function add(key, v) { n[key]++; s[key] += v; q[key] += v * v }
function mean(key) { return s[key] / n[key] }
function sd(key,   m, v) {  # sample standard deviation; -1 when there is a single value
  if (n[key] < 2) return -1
  m = mean(key); v = (q[key] - n[key] * m * m) / (n[key] - 1)
  return v > 0 ? sqrt(v) : 0
}
function cell(key, digits,   fmt) {
  if (!(key in n)) return "—"
  fmt = "%." digits "f"
  return sd(key) < 0 ? sprintf(fmt, mean(key)) : sprintf(fmt " ± " fmt, mean(key), sd(key))
}
function paper(v) { return v == "" ? "—" : v }
function signed(v) { return sprintf("%+.2f", v) }
# "ours / paper, verdict" for the difference of `metric` between row r and its baseline b.
function delta(r, b, metric, pr, pb,   k, kb, d, se, dp, verdict, ours) {
  k = r SUBSEP metric; kb = b SUBSEP metric
  if (b == "" || !(k in n) || !(kb in n)) return "—"
  d = mean(k) - mean(kb)
  se = (sd(k) < 0 || sd(kb) < 0) ? -1 : sqrt(sd(k) ^ 2 / n[k] + sd(kb) ^ 2 / n[kb])
  ours = se < 0 ? signed(d) : signed(d) " ± " sprintf("%.2f", se)
  if (pr == "" || pb == "") return ours " / — (no paper numbers)"
  dp = pr - pb
  if (se >= 0 && (d < 0 ? -d : d) <= 2 * se) verdict = "within noise"
  else if (dp == 0) verdict = "paper: no change"
  else verdict = ((d > 0) == (dp > 0)) ? "same direction" : "opposite direction"
  return ours " / " signed(dp) " (" verdict ")"
}

FILENAME != "-" && FNR == 1 { file++; next }  # the CSV headers
FILENAME == "-" {
  rows++; id[rows] = $1; label[$1] = $2; base[$1] = $4
  pnat[$1] = $5; pfgsm[$1] = $6; ppgd[$1] = $7; ptasa[$1] = $8
  next
}
file == 1 { add($1 SUBSEP "nat", $4); add($1 SUBSEP "fgsm", $5); add($1 SUBSEP "pgd", $6) }
file == 2 {
  if ($3 > layers) layers = $3
  layer[$3] = $4
  add($1 SUBSEP "clean" SUBSEP $3, $5); add($1 SUBSEP "adv" SUBSEP $3, $6); add($1 SUBSEP "diff" SUBSEP $3, $7)
}

END {
  if (kind == "tasa") {
    print "TASA per spiking layer (apps/tasa.h: the fraction of the layer's neurons firing, averaged over time steps and the analysed test examples), on clean inputs and on PGD inputs (eps 4/255, 4 steps of 1/255), and |clean − PGD|. The paper reports the difference at layer 5 only."
    print ""
    hdr = "| layer |"; sep = "|---|"
    for (i = 1; i <= rows; ++i) {
      r = id[i]
      hdr = hdr " " label[r] " clean | " label[r] " PGD | " label[r] " \\|diff\\| | paper \\|diff\\| |"
      sep = sep "---|---|---|---|"
    }
    print hdr; print sep
    for (l = 1; l <= layers; ++l) {
      line = "| " l " (" layer[l] ") |"
      for (i = 1; i <= rows; ++i) {
        r = id[i]
        line = line " " cell(r SUBSEP "clean" SUBSEP l, 4) " | " cell(r SUBSEP "adv" SUBSEP l, 4) " | " \
               cell(r SUBSEP "diff" SUBSEP l, 4) " | " (l == 5 ? paper(ptasa[r]) : "—") " |"
      }
      print line
    }
    print ""
  }
  print "| row | natural | FGSM | PGD | paper natural | paper FGSM | paper PGD | vs | Δ FGSM: ours / paper | Δ PGD: ours / paper |"
  print "|---|---|---|---|---|---|---|---|---|---|"
  for (i = 1; i <= rows; ++i) {
    r = id[i]; b = base[r]
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label[r], cell(r SUBSEP "nat", 2),
           cell(r SUBSEP "fgsm", 2), cell(r SUBSEP "pgd", 2), paper(pnat[r]), paper(pfgsm[r]), paper(ppgd[r]),
           (b == "" ? "—" : label[b]), delta(r, b, "fgsm", pfgsm[r], pfgsm[b]), delta(r, b, "pgd", ppgd[r], ppgd[b])
  }
}
