import os,glob,random,shlex,collections,sys
dst=sys.argv[1]; os.makedirs(dst,exist_ok=True)
tools=collections.defaultdict(list)
for f in sorted(glob.glob('out/*.tsv')):
    tool=os.path.basename(f).split('.')[0]
    for l in open(f):
        l=l.rstrip('\n')
        if not l: continue
        k,c,s=l.split('\t')
        assert k in ('read','local','write','destroy','credential','code'),l
        w=shlex.split(c); assert w[0]==tool,(tool,c)
        tools[tool].append((k,c,s))
caps={'docker':{'local':60,'read':80,'write':45},'aws':{'read':150,'write':110,'destroy':150},'doctl':{'read':70,'write':50},'gh':{'read':100,'write':80,'local':25}}
tot=collections.Counter()
for tool,rows in tools.items():
    seen=set(); out=[]
    for r in rows:
        if r[1] in seen: continue
        seen.add(r[1]); out.append(r)
    cap=caps.get(tool,{})
    if cap:
        rnd=random.Random(11); keep=[]
        for k in ('read','local','write','destroy','credential','code'):
            rs=[r for r in out if r[0]==k]
            keepall=[r for r in rs if 'evasive' in r[2] or not r[2].startswith(('awscli','docker docs (','doctl source','gh source'))]
            rest=[r for r in rs if r not in keepall]
            if k in cap and len(rs)>cap[k]: rs=sorted(keepall+rnd.sample(rest,max(0,cap[k]-len(keepall))),key=out.index)
            keep+=rs
        out=sorted(keep,key=out.index)
    with open(f'{dst}/{tool}.tsv','w') as f:
        f.write(f'# {tool}: class<TAB>command line<TAB>source (provenance; "; evasive" marks evasive spellings). Labels follow ../RUBRIC.md.\n')
        for r in out: f.write('\t'.join(r)+'\n')
    c=collections.Counter(r[0] for r in out); ev=sum('evasive' in r[2] for r in out)
    tot.update(c); tot['evasive']+=ev
    print(f"{tool:10} {len(out):5} "+' '.join(f"{k}={c[k]}" for k in ('read','local','write','destroy','credential','code'))+f" evasive={ev}")
n=sum(tot[k] for k in ('read','local','write','destroy','credential','code'))
safe=tot['read']+tot['local']+tot['write']
print('total',n,dict(tot),'safe%',round(100*safe/n,1))
