import re,sys
from common import *
GLOBAL_VAL={'-H','--host','--context','-c','--config','--log-level','-l','--tlscacert','--tlscert','--tlskey'}
HOSTSENS=('/', '/etc','/root','/var/run/docker.sock','/run/docker.sock','/var/lib/docker','/home','/proc','/sys','/dev','/usr','/boot','/var')
def hosty(w):
    for i,a in enumerate(w):
        if a in ('--privileged','--pid=host','--userns=host','--ipc=host','--uts=host') or a.startswith(('--cap-add=ALL','--cap-add=SYS_ADMIN','--security-opt=seccomp=unconfined','--security-opt=apparmor=unconfined','--device=')) or a=='--device':
            return True
        if a in ('--cap-add',) and i+1<len(w) and w[i+1] in ('ALL','SYS_ADMIN','SYS_PTRACE'): return True
        if a in ('--security-opt',) and i+1<len(w) and 'unconfined' in w[i+1]: return True
        if a=='--pid' and i+1<len(w) and w[i+1]=='host': return True
        v=None
        if a in ('-v','--volume','--mount') and i+1<len(w): v=w[i+1]
        elif a.startswith(('-v=','--volume=','--mount=')): v=a.split('=',1)[1]
        elif a.startswith('-v') and len(a)>2: v=a[2:]
        if v:
            src=v.split(':')[0] if not v.startswith(('type=','source=','src=')) else dict(x.split('=',1) for x in v.split(',') if '=' in x).get('source',dict(x.split('=',1) for x in v.split(',') if '=' in x).get('src',''))
            if src in HOSTSENS or src.rstrip('/') in HOSTSENS or src.startswith(('/etc','/root','/var/run/docker.sock','/proc','/sys','/dev/','/boot')): return True
    return False
def strip(w):
    i=1
    while i<len(w) and w[i].startswith('-'):
        i+= 2 if w[i] in GLOBAL_VAL else 1
    return w[i:]
def cls(line):
    w=words(line); r=strip(w)
    if not r: return 'read'
    v=r[0]; s=r[1] if len(r)>1 else ''
    if v in ('container','image','volume','network','system','builder','buildx','plugin','context','node','service','stack','swarm','secret','config','manifest','trust','checkpoint','compose','scout'):
        obj=v
    else:
        obj=None
    if obj=='container' and s=='prune': return 'destroy'
    if obj=='container' and s in ('run','create','exec','attach','rm','prune','ls','list','ps','inspect','logs','kill','stop','start','restart','cp','commit','export','diff','port','stats','top','pause','unpause','rename','update','wait'):
        return cls('docker '+' '.join(r[1:]))
    if obj=='image' and s in ('rm','prune','ls','list','inspect','history','pull','push','tag','build','save','load','import'):
        if s=='rm': return 'destroy'
        if s=='prune': return 'destroy' if any(a in ('-a','--all') for a in r) else 'local'
        if s=='ls' or s=='list': return 'read'
        return cls('docker '+' '.join(r[1:]))
    if obj:
        if s in ('ls','list','inspect','ps','logs','df','info','events','history','version','show','cat','quickview','cves','compare','recommendations','top','verify'): return 'read'
        if obj=='volume': return 'destroy' if s in ('rm','remove','prune') else 'local'
        if obj=='system': return 'destroy' if s=='prune' else 'local'
        if obj in ('network','builder','context','buildx','checkpoint'):
            if obj=='buildx' and s=='build': return 'write' if '--push' in r else 'local'
            return 'local'
        if obj=='plugin':
            if s in ('install','enable','upgrade'): return 'code'
            return 'local'
        if obj=='secret': return 'credential' if s=='create' else 'destroy' if s=='rm' else 'read'
        if obj in ('node','service','stack','config'):
            if s in ('rm','remove','down'): return 'destroy'
            if obj=='node' and s in ('ps',): return 'read'
            if obj=='service' and s=='logs': return 'read'
            return 'write'
        if obj=='swarm':
            if s=='leave': return 'destroy' if any(a in ('-f','--force') for a in r) else 'write'
            if s in ('join-token','unlock-key'): return 'credential'
            if s=='ca': return 'read' if '--rotate' not in r else 'write'
            return 'write'
        if obj=='manifest': return 'write' if s=='push' else 'local'
        if obj=='trust': return 'write'
        if obj=='compose':
            if s in ('down',): return 'destroy' if any(a in ('-v','--volumes') for a in r) else 'local'
            if s in ('rm',): return 'destroy'
            if s=='exec': return 'code'
            if s in ('push',): return 'write'
            if s in ('config','ps','logs','ls','images','top','version','port','events'): return 'read'
            return 'code' if hosty(r) else 'local'
        return None
    if v in ('ps','images','inspect','logs','history','version','info','search','stats','top','events','diff','port','wait'): return 'read'
    if v in ('run','create'): return 'code' if hosty(r) else 'local'
    if v in ('exec','attach'): return 'code'
    if v in ('rm','rmi'): return 'destroy'
    if v in ('login',): return 'credential'
    if v in ('logout','build','start','stop','restart','kill','pause','unpause','pull','tag','commit','save','load','import','export','rename','update','cp','builder','bake'): return 'local'
    if v=='push': return 'write'
    return None
rows=[]
for l in open('src/docker.txt'):
    rel,cmd=l.rstrip('\n').split('\t',1)
    c=clean(cmd.rstrip('`'))
    if not c: continue
    if len(words(c))<3 and words(c)[1] in ('rm','rmi','exec','attach','run','kill','stop','start'): continue
    k=cls(c)
    if not k: print('??',c,file=sys.stderr); continue
    rows.append((k,c,f'docker docs (docker/cli v29.7.2): {rel}'))
rows=[r for r in rows]
with open('out/docker.tsv','w') as f:
    for r in rows: f.write('\t'.join(r)+'\n')
from collections import Counter
print(Counter(r[0] for r in rows),file=sys.stderr)
